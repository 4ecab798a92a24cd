"""One job, start to finish, for every entry point (`python -m harness`, a sweep's worker, the
Python API): check the config → build the data and the network → skip it if already done → open
its run → train → close the run.

Where the job runs (alone or in a sweep, tracked or not) is a `Context`; what happens when it
fails is one wrapper, `run`: in a sweep, any error is recorded as a FAILED run and the sweep goes
on; a signal, or the loss of the sweep's launching process, ends the run KILLED.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import sys
import time
import traceback
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from . import data as datasets
from . import duration, memory, names, signals, store, tracking
from .config import check, check_batch_size, config_hash
from .errors import ConfigError, describe
from .network import Network
from .train import Result, blas, planned_epochs, random_streams, train

if TYPE_CHECKING:
    from mlflow.entities import Run

# environment of a sweep's jobs: the id of its parent run, its number of jobs
SWEEP, JOBS = "HARNESS_SWEEP", "HARNESS_JOBS"
TALLY = ".jobs_done"  # in the sweep's folder: a line per finished job, the time it began
CLAIM_POLL_SECONDS = 2.0
log = logging.getLogger("harness")  # Hydra sends a job's lines to the terminal and to its folder's log file


@dataclass
class Context:
    """Where a job runs: tracked or not, and in which sweep (the parent run's id) with which overrides."""
    track: bool = True
    overrides: list[str] = field(default_factory=list)
    sweep: str | None = None
    resume: bool = False  # skip the job if its config already has a complete FINISHED run
    jobs: int = 1
    tally: Path | None = None  # the file in the sweep's folder that counts its finished jobs

    @classmethod
    def from_hydra(cls, cfg: DictConfig) -> "Context":
        hydra = HydraConfig.get()
        sweep = os.environ.get(SWEEP) if hydra.mode == RunMode.MULTIRUN else None
        return cls(overrides=list(hydra.overrides.task), sweep=sweep, resume=bool(sweep) and cfg.tracking.resume,
                   jobs=int(os.environ.get(JOBS, 1)) if sweep else 1,
                   tally=Path(hydra.sweep.dir) / TALLY if sweep else None)

    def progress(self, seconds: float) -> tuple[str, str]:
        """`[5/27] … ETA 20 s`: how many of the sweep's jobs are done with this one (which took
        `seconds`), and when the rest will be at the pace since the earliest of them began: the
        workers' start-up before it is paid once. Jobs count themselves in `tally` (a line each,
        appended under a lock), so parallel workers count one sequence; on a cluster each node
        counts its own."""
        with open(self.tally, "a+") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            file.write(f"{time.time() - seconds:.3f}\n")
            file.flush()
            file.seek(0)
            begun = [float(line) for line in file]
        done = len(begun)
        left = (time.time() - min(begun)) / done * (self.jobs - done)
        return f"[{done}/{self.jobs}]", (f", ETA {left:.0f} s" if self.jobs > done else "")


@dataclass
class Outcome:
    status: str  # finished, diverged, skipped, failed or killed
    name: str
    result: Result | None = None
    network: Network | None = None
    run_id: str | None = None


def metrics_line(metrics: dict) -> str:
    return ", ".join(f"{key} {metrics[key]:.4g}" for key in (names.TRAIN_COST, names.TEST_ACCURACY) if key in metrics)


def epoch_lines(epochs: int, expected: float):
    """on_epoch for one run of `epochs` epochs: a line per epoch, at most one a second, and always
    the last; the first says how long training is expected to take (`expected` seconds)."""
    shown = [0.0]

    def show(epoch: int, metrics: dict, series: dict) -> None:
        if epoch == epochs or time.monotonic() - shown[0] >= 1.0:
            shown[0] = time.monotonic()
            log.info(f"epoch {epoch}/{epochs}: {metrics_line(metrics)}"
                     + (f" (training expected to take {duration.text(expected)})" if epoch == 0 else ""))

    return show


def run_name(overrides: list[str]) -> str:
    """`lr=3,batch_size=10,seed=0`: the overrides that say what this job computes."""
    key = lambda override: override.split("=", 1)[0].lstrip("+~")
    aside = lambda k: k == "experiment" or any(k == e or k.startswith(f"{e}.") for e in names.EXECUTION_KEYS)
    return ",".join(o for o in overrides if not aside(key(o)))


def default_name(cfg: DictConfig) -> str:
    return f"lr={cfg.lr},batch_size={cfg.batch_size},seed={cfg.seed}"


@lru_cache(maxsize=1)
def load_data(settings: str, dtype: str) -> datasets.Dataset:
    """The dataset of these settings (JSON), kept for the next job of this process that uses the same."""
    return datasets.load(json.loads(settings)).astype(dtype)


def build(cfg: DictConfig):
    """The dataset, the initial network and the sampling stream of a checked config."""
    dataset = load_data(json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True), cfg.model.dtype)
    check_batch_size(cfg.batch_size, len(dataset.train))
    init_rng, sampling_rng = random_streams(cfg.seed)
    m = cfg.model
    sizes = [dataset.n_in, *m.hidden, dataset.n_out]
    batch = len(dataset.train) if cfg.batch_size == "full" else cfg.batch_size
    memory.check_network(list(m.hidden), sizes, batch, np.dtype(m.dtype).itemsize)
    network = Network.from_sizes(sizes, seed=init_rng, init=m.init,
                                 dtype=m.dtype, activation=m.activation, output=m.output, cost=m.cost)
    return dataset, network, sampling_rng


def fit(cfg: DictConfig, dataset, network: Network, sampling_rng, on_epoch=lambda epoch, metrics, series: None) -> Result:
    return train(network, dataset, cfg.lr, cfg.batch_size, cfg.epochs, sampling_rng, last_batch=cfg.last_batch,
                 divergence_ratio=cfg.divergence_ratio, measure=cfg.measure, on_epoch=on_epoch, budget=cfg.budget)


def epochs_of(cfg: DictConfig, n_train: int) -> int:
    """The epochs a checked config records after epoch 0, on `n_train` training inputs."""
    return planned_epochs(n_train, cfg.batch_size, cfg.last_batch, cfg.epochs, cfg.budget)


def claim(client, experiment: str, digest: str, epochs: int, open_run) -> str | Run:
    """The id of a new run (`open_run()`) that holds the claim to train this config, or the
    complete FINISHED run that makes the job a skip. The sweep left out the configs done when it
    began; a job opens its run first, then looks once for the others of its config: one that
    finished meanwhile makes the job a skip, one another live process is training is waited for
    (it may finish: a skip; or stop: then this job trains it). Two jobs that claim at the same
    moment each see the other's run, since each looks after creating its own, and both step back
    and try again: two trainings of one config never run at once."""
    while True:
        run_id = open_run()
        runs = store.config_runs(experiment, digest)
        done = store.finished(client, runs, epochs)
        other = store.live(runs, mine=run_id)
        if done is None and other is None:
            return run_id
        client.delete_run(run_id)
        if done is not None:
            return done
        print(f"waiting: {other.info.run_name} is being trained by pid {other.data.tags.get(names.PID)} "
              f"on {other.data.tags.get(names.HOST)} (run {other.info.run_id})", flush=True)
        time.sleep(random.uniform(0.1, 1.0))  # two that stepped back at once try again at different times
        while store.live_claim(experiment, digest) is not None:
            signals.check()
            time.sleep(CLAIM_POLL_SECONDS)


class Job:
    """One job's sequence; `run_id` is set once its run is open."""

    def __init__(self, cfg: DictConfig, context: Context):
        self.cfg, self.context = cfg, context
        self.name = run_name(context.overrides) or default_name(cfg)
        self.run_id: str | None = None

    @cached_property
    def digest(self) -> str:  # after `check`: resolving a bad config there gives the one-line error
        return config_hash(self.cfg)

    def tags(self) -> dict[str, str]:
        return {names.CONFIG_HASH: self.digest, names.OVERRIDES: " ".join(self.context.overrides)}

    def train(self) -> Outcome:
        """check → build → (skip if done) → open run → train → close run."""
        cfg, context = self.cfg, self.context
        check(cfg)
        with blas().limit(limits=cfg.blas_threads):
            dataset, network, sampling_rng = build(cfg)  # checks what depends on the data, before tracking
            if context.sweep is None:  # a sweep's jobs were timed and checked before the first began
                expected = duration.check(cfg, duration.sample(dataset))
            if not context.track:
                result = fit(cfg, dataset, network, sampling_rng)
                return Outcome(result.status, self.name, result, network)
            client = store.connect(cfg.tracking.uri)
            experiment = store.experiment_id(client, cfg.tracking.experiment)
            if context.sweep is None:  # a sweep's launcher has already closed abandoned runs
                store.close_abandoned(client, experiment)
            open_run = lambda: tracking.create_run(client, experiment, self.name, self.tags(), context.sweep)
            epochs = epochs_of(cfg, len(dataset.train))
            claimed = claim(client, experiment, self.digest, epochs, open_run) if context.resume else open_run()
            if not isinstance(claimed, str):
                return Outcome("skipped", self.name, run_id=claimed.info.run_id)
            self.run_id = claimed
            with tracking.recorded(client, self.run_id, cfg.tracking.patience) as recorder:
                recorder.log_inputs(cfg, dataset)
                show = epoch_lines(epochs, expected) if cfg.progress and context.sweep is None else lambda *epoch: None
                on_epoch = lambda *epoch: (recorder.log_epoch(*epoch), show(*epoch), signals.check())
                result = fit(cfg, dataset, network, sampling_rng, on_epoch=on_epoch)
                recorder.finish(result, network)
        return Outcome(result.status, self.name, result, network, self.run_id)

    def record_failure(self, error: BaseException) -> None:
        """A FAILED run for a job that failed before its run was open, if the store can take one."""
        try:
            client = store.connect(self.cfg.tracking.uri)
            experiment = store.experiment_id(client, self.cfg.tracking.experiment)
            self.run_id = tracking.create_run(client, experiment, self.name, self.tags(), self.context.sweep)
            store.end(client, self.run_id, "FAILED", describe(error))
        except Exception as store_error:  # noqa: BLE001 - the sweep's summary still counts the job failed
            print(f"the store could not record it either: {describe(store_error)}", file=sys.stderr)


def store_error(error: BaseException) -> bool:
    """An error of the store or of the way to it: its one line says all, its traceback is MLflow's."""
    return isinstance(error, OSError) or type(error).__module__.split(".")[0] in ("mlflow", "sqlalchemy", "sqlite3",
                                                                                   "requests", "urllib3")


def run(cfg: DictConfig, context: Context) -> Outcome:
    """The job with its failure policy. Alone, an error propagates (the command line reports it);
    in a sweep, it is printed and recorded FAILED, and the sweep goes on. Stopped ends the run
    KILLED; a worker process of a sweep then exits rather than take another job."""
    if not context.track:
        return Job(cfg, context).train()
    job, start = Job(cfg, context), time.perf_counter()
    signals.clear()  # what stopped an earlier job of this process (a notebook, a Ray worker) ended there
    try:
        with signals.handled(), signals.deferred():
            signals.watch_launcher()
            outcome = job.train()
    except signals.Stopped as stop:
        outcome = Outcome("killed", job.name, run_id=job.run_id)
        report(cfg, context, outcome, time.perf_counter() - start, stop.reason)
        if signals.launcher() is not None:  # a worker process of a parallel sweep: take no other job
            os._exit(stop.exit_code)
        if signals.in_ray_worker():  # the task ends; Ray's worker goes on
            return outcome
        raise
    except Exception as error:
        if context.sweep is None:
            raise
        if not (isinstance(error, ConfigError) or store_error(error)):
            traceback.print_exc()
        if job.run_id is None:
            job.record_failure(error)
        outcome = Outcome("failed", job.name, run_id=job.run_id)
        report(cfg, context, outcome, time.perf_counter() - start, describe(error))
        return outcome
    report(cfg, context, outcome, time.perf_counter() - start)
    return outcome


def report(cfg: DictConfig, context: Context, outcome: Outcome, seconds: float, why: str = "") -> None:
    """A sweep's line for this job: `[5/27] lr=3,seed=1 finished: train_cost 0.011, … (1.2 s), ETA 20 s`."""
    if context.sweep is None or not cfg.progress:
        return
    place, eta = context.progress(seconds)
    what = why or (metrics_line(outcome.result.final) if outcome.result else "already has a FINISHED run")
    log.info(f"{place} {outcome.name} {outcome.status}: {what} ({seconds:.1f} s){eta}")
