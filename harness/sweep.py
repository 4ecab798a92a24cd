"""A Hydra multirun as one MLflow sweep: a parent run (tag role=sweep) with one child run per job.

`SweepCallback` runs in the launching process. Before any job starts it expands the sweep and
checks every job's config (a bad setting stops the sweep before anything is tracked), opens the
store once (workers then only open it), marks KILLED the runs left RUNNING by processes that are
gone, and opens the parent run. The parent's id is the sweep's id: each job gets it, with the
identity of the launching process, in its environment (Hydra's `hydra.job.env_set`, which every
launcher applies). At the end it marks FAILED the runs still RUNNING (their process died), prints
one row per job and exits non-zero if any job did not finish. If the launch fails or is stopped
instead, `abort` ends every run of the sweep still RUNNING.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from mlflow.entities import Metric
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from . import data as datasets
from . import names, server, signals, store, tracking
from .config import check, check_batch_size, config_hash
from .errors import ConfigError, describe, exit_with
from .job import JOBS, STARTED, SWEEP, run_name

OUTCOMES = ("finished", "diverged", "failed", "killed", "skipped", "missing")
current: "SweepCallback | None" = None  # the sweep this process launches, for `abort`
# why a run is still RUNNING once every job has returned: say, a Ray worker lost with its node,
# whose task Ray ran again elsewhere
LEFT_RUNNING = "still RUNNING when every job had returned: its process died, or the store refused its end"


def job_overrides(config: DictConfig) -> list[list[str]]:
    """Every job's overrides, expanded as Hydra's basic sweeper does (sweeper params, then the command line)."""
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    arguments = [f"{key}={value}" for key, value in params.items()] + list(config.hydra.overrides.task)
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    return [job for batch in BasicSweeper.split_arguments(parser.parse_overrides(arguments), None) for job in batch]


def job_config(config: DictConfig, overrides: list[str]) -> DictConfig:
    """The config a job with these overrides will see; a value the schema refuses is a ConfigError."""
    try:
        cfg = GlobalHydra.instance().config_loader().load_sweep_config(config, list(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(composition_error(error)) from None
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


def composition_error(error: BaseException) -> str:
    """One line for Hydra's or OmegaConf's refusal of a value: the key, then why."""
    cause = error.__cause__ if isinstance(error.__cause__, OmegaConfBaseException) else error
    key = getattr(cause, "full_key", None)
    message = (getattr(cause, "msg", None) or str(cause)).strip().splitlines()[0]
    return f"{key}: {message}" if key else message


def check_jobs(configs: list[DictConfig]) -> None:
    """Raise ConfigError for the first job that cannot run; load each distinct dataset once."""
    sizes = {}
    for cfg in configs:
        check(cfg)
        data = OmegaConf.to_container(cfg.data, resolve=True)
        key = json.dumps(data, sort_keys=True)
        if key not in sizes:
            sizes[key] = len(datasets.load(data).train)
        check_batch_size(cfg.batch_size, sizes[key])


def outcome(run) -> str:
    """finished or diverged (MLflow status FINISHED), failed, killed, or running."""
    if run.info.status == "FINISHED":
        return run.data.tags.get(names.STATUS, names.FINISHED)
    return run.info.status.lower()


def ui_command(uri: str) -> str:
    """How to browse this store, from any directory."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{store.sqlite_path(uri).resolve()}"
    return f"mlflow ui --backend-store-uri {shlex.quote(uri)}"


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


class SweepCallback(Callback):
    """Groups a multirun into one MLflow parent run and prints its summary."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        global current
        try:
            with signals.deferred():
                self.start(config)
                current = self
        except ConfigError as error:
            exit_with(f"error: {error}", 2)
        except Exception as error:  # noqa: BLE001 - Hydra would only warn and launch the jobs
            exit_with(f"error: the sweep could not start: {describe(error)}", 1)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        global current
        current = None
        with signals.deferred():
            self.end()

    def start(self, config: DictConfig) -> None:
        jobs = job_overrides(config)
        configs = [job_config(config, overrides) for overrides in jobs]
        check_jobs(configs)
        self.jobs = [(run_name(overrides), config_hash(cfg), cfg.epochs) for overrides, cfg in zip(jobs, configs)]
        self.uri, self.patience = configs[0].tracking.uri, configs[0].tracking.patience
        server.refuse_local_store(config.hydra.launcher._target_, self.uri)
        if configs[0].dry_run:
            print(self.dry_run(configs))
            sys.exit(0)
        self.client = store.connect(self.uri)
        self.experiment = store.experiment_id(self.client, configs[0].tracking.experiment)
        closed = store.close_abandoned(self.client, self.experiment)
        if closed:
            print(f"marked KILLED {len(closed)} run(s) left RUNNING by processes that are gone: {', '.join(closed)}")
        tags = {names.ROLE: names.SWEEP, names.OVERRIDES: " ".join(config.hydra.overrides.task),
                **tracking.process_tags(), **tracking.git_tags()}
        if configs[0].study.question:  # the description of the sweep and of its experiment in the MLflow UI
            tags[names.DESCRIPTION] = configs[0].study.question
            self.client.set_experiment_tag(self.experiment, names.DESCRIPTION, configs[0].study.question)
        self.parent = self.client.create_run(self.experiment, run_name=f"sweep {Path(config.hydra.sweep.dir).name}",
                                             tags=tags).info.run_id
        environment = {SWEEP: self.parent, signals.LAUNCHER: signals.this_process(), JOBS: len(jobs),
                       STARTED: f"{time.time():.3f}"}
        if "MLFLOW_TRACKING_URI" in os.environ:  # a Ray worker on another node has an environment of its own
            environment["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_TRACKING_URI"]
        with read_write(config.hydra), open_dict(config.hydra):  # each job's config is composed from these
            config.hydra.overrides.hydra.extend([f"++hydra.job.env_set.{key}={value}" for key, value in environment.items()])

    def dry_run(self, configs: list[DictConfig]) -> str:
        """A row per job: its name, config hash and what a launch would do with it."""
        done = store.done_already(self.uri, configs[0].tracking.experiment, [digest for _, digest, _ in self.jobs],
                                  [epochs for _, _, epochs in self.jobs])
        resume = configs[0].tracking.resume
        rows = [("job", "config hash", "a launch would")] + [
            (name or "(defaults)", digest[:12], f"skip it: FINISHED run {run_id}" if run_id and resume else "train it")
            for (name, digest, _), run_id in zip(self.jobs, done)]
        return f"{table(rows)}\n\n{len(self.jobs)} jobs; dry run: nothing was trained or tracked"

    def end(self) -> None:
        tracking.close_unclosed(self.client)
        try:
            store.patiently(self.patience, self.end_running, "FAILED", LEFT_RUNNING)
            counts, text, best = store.patiently(self.patience, self.summarize)
        except Exception as error:  # noqa: BLE001 - the store cannot be read: say so in one line
            exit_with(f"error: the sweep's runs cannot be read back from {self.uri} ({describe(error)}); "
                      f"the next launch marks what was left RUNNING", 1)
        print(text, flush=True)
        try:  # the results on the parent run, so that sweeps can be sorted in the MLflow UI
            metrics = {f"jobs_{status}": n for status, n in counts.items()} | best
            self.client.log_batch(self.parent, metrics=[Metric(key, value, 0, 0) for key, value in metrics.items()],
                                  synchronous=True)
            self.client.log_text(self.parent, text, "summary.txt")
            store.end(self.client, self.parent, "FINISHED")
        except Exception as error:  # noqa: BLE001 - the next launch marks the parent, its process gone
            print(f"the store refused the end of the sweep ({describe(error)}); the next launch marks it",
                  file=sys.stderr)
        bad = len(self.jobs) - counts["finished"] - counts["diverged"] - counts["skipped"]
        if bad:
            exit_with(f"error: {bad} of {len(self.jobs)} jobs did not finish", 1)

    def summarize(self) -> tuple[dict[str, int], str, dict[str, float]]:
        """The counts of each outcome, a table with a row per job, and the best final metrics."""
        children = store.search(self.experiment, f"tags.`{names.PARENT_RUN_ID}` = '{self.parent}'")
        by_hash = {run.data.tags.get(names.CONFIG_HASH): run for run in reversed(children)}  # latest first wins
        rows, counts = [("run", names.TRAIN_COST, names.TEST_ACCURACY, "status")], dict.fromkeys(OUTCOMES, 0)
        trained = []
        for name, digest, epochs in self.jobs:
            run = by_hash.get(digest)
            if run is not None:
                status = outcome(run)
            else:  # resumed: finished by an earlier sweep
                run = store.finished_run(self.client, self.experiment, digest, epochs)
                status = "skipped" if run else "missing"
            counts[status] = counts.get(status, 0) + 1
            metrics = run.data.metrics if run else {}
            if status in ("finished", "skipped"):
                trained.append(metrics)
            fmt = lambda key: f"{metrics[key]:.4g}" if key in metrics else "-"
            rows.append((name or "(defaults)", fmt(names.TRAIN_COST), fmt(names.TEST_ACCURACY), status))
        summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n or status != "missing")
        best = {f"best_{names.TRAIN_COST}": min((m[names.TRAIN_COST] for m in trained if names.TRAIN_COST in m), default=None),
                f"best_{names.TEST_ACCURACY}": max((m[names.TEST_ACCURACY] for m in trained if names.TEST_ACCURACY in m),
                                                   default=None)}
        text = f"\n{table(rows)}\n\n{len(self.jobs)} jobs: {summary}\n{ui_command(self.uri)}"
        return counts, text, {key: value for key, value in best.items() if value is not None}

    def abort(self, status: str, reason: str) -> None:
        """End KILLED or FAILED every run of the sweep still RUNNING, and the sweep itself; what
        the store refuses now, the next launch marks."""
        try:
            self.end_running(status, reason)
            store.end(self.client, self.parent, status, reason)
        except Exception as error:  # noqa: BLE001
            print(f"the store refused to mark the sweep's runs ({describe(error)}); the next launch marks them",
                  file=sys.stderr)

    def end_running(self, status: str, reason: str) -> None:
        """End `status` every job's run of the sweep still RUNNING."""
        where = f"attributes.status = 'RUNNING' and tags.`{names.PARENT_RUN_ID}` = '{self.parent}'"
        for run in store.search(self.experiment, where):
            store.end(self.client, run.info.run_id, status, reason)
