"""Recording one job as an MLflow run that never says more than the store holds.

A run holds the resolved config (params and `config.yaml`), the dataset it saw (an MLflow dataset
input with its digest), per-epoch metrics, and at the end its curves, weights and status. Every
call names the run by its id (MLflow's client, never its "active run"), so a failed write cannot
leave a run active for the next job, and nothing but `finish` ever ends a run FINISHED: it
writes the last metrics, then the artifacts, then the status. If anything fails the run ends
FAILED (KILLED when stopped) with tag `error`; if even that cannot be written, the run stays
RUNNING and is closed at the end of the sweep or, its process gone, by the next launch.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from . import data, names, signals, store
from .errors import describe
from .network import Network
from .signals import Stopped, process_start
from .train import Result, blas

if TYPE_CHECKING:  # MLflow and pandas are imported where a run is written: a dry run does without them
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

# runs whose end could not be written (the store failed): their status and error, tried again later
unclosed: dict[str, tuple[str, str]] = {}
# where the runs this process created keep their artifacts, as the store said when creating them
artifact_uris: dict[str, str] = {}


def process_tags() -> dict[str, str]:
    pid = os.getpid()
    return {names.HOST: socket.gethostname(), names.PID: str(pid), names.PROCESS_START: process_start(pid)}


@cache
def git_tags() -> dict[str, str]:
    """The commit of the harness code, and whether it had uncommitted changes, if it is a git checkout."""
    folder = Path(__file__).resolve().parent
    git = lambda *args: subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
    try:
        commit = git("rev-parse", "HEAD")
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if commit.returncode != 0:
        return {}
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return {names.GIT_COMMIT: commit.stdout.strip(), names.GIT_DIRTY: str(bool(dirty)).lower()}


@cache
def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (/proc/cpuinfo), else as Python's platform does."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def timing_conditions() -> dict[str, str]:
    """What a run's seconds depend on, read as its run is created, just before training: the CPU and its number of cores,
    every BLAS library loaded with its version and the threads it may use (blas_threads applied),
    and the machine's load average."""
    libraries = [library for library in blas().info() if library["user_api"] == "blas"]
    return {names.CPU_MODEL: cpu_model(), names.CPU_COUNT: str(os.cpu_count()),
            names.BLAS: "; ".join(sorted({f"{library['internal_api']} {library['version']}" for library in libraries}))
            or "none found",
            names.BLAS_NUM_THREADS: ", ".join(sorted({str(library["num_threads"]) for library in libraries}, key=int)),
            names.LOAD_START: load_average()}


def flatten(node, prefix: str = "") -> dict[str, str]:
    """{"model.hidden": "[30]", "lr": "3.0", ...}: every leaf of the config under a dotted key."""
    flat = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


class Recorder:
    """One run's writes. Metrics are buffered and written at most once a second (each write to
    SQLite is a transaction of a few ms, and parallel jobs queue for the file's lock), so the
    store is never more than that behind the training; a thread says every HEARTBEAT_SECONDS
    that the run's process is alive."""

    FLUSH_SECONDS = 1.0

    def __init__(self, client: MlflowClient, run_id: str, patience: float = 0.0):
        self.client, self.run_id, self.patience = client, run_id, patience
        self.pending: list[Metric] = []
        self.flushed_at = time.monotonic()
        self.stopped = threading.Event()
        threading.Thread(target=self.beat, name="harness-heartbeat", daemon=True).start()

    def patiently(self, call, *args, **kwargs):
        return store.patiently(self.patience, call, *args, **kwargs)

    def beat(self) -> None:
        """Every HEARTBEAT_SECONDS, say the run is alive; every RUN_WATCH_SECONDS, look whether someone
        else ended it (a stopped sweep's launcher marks its runs KILLED): then stop the job at its
        next epoch, as a signal would, on whatever host and launcher it runs."""
        beaten = time.monotonic()
        while not self.stopped.wait(store.RUN_WATCH_SECONDS):
            try:
                run = self.client.get_run(self.run_id)
                if run.info.status != "RUNNING" and not self.stopped.is_set():
                    signals.received = Stopped(f"its run was marked {run.info.status}: "
                                               f"{run.data.tags.get(names.ERROR, '')}", 128 + signal.SIGTERM)
                    return
                if time.monotonic() - beaten >= store.HEARTBEAT_SECONDS:
                    self.client.set_tag(self.run_id, names.HEARTBEAT, f"{time.time():.0f}")
                    beaten = time.monotonic()
            except Exception:  # noqa: BLE001 - a missed beat only makes the run look stale sooner
                pass

    def log_inputs(self, cfg: DictConfig, dataset: data.Dataset) -> None:
        """The resolved config as params and `config.yaml`, and the dataset with its digest."""
        from mlflow.entities import Dataset, DatasetInput, InputTag, Param
        from mlflow.exceptions import MlflowException

        resolved = OmegaConf.to_container(cfg, resolve=True)
        self.patiently(self.client.log_batch, self.run_id, params=[Param(k, v) for k, v in flatten(resolved).items()],
                       synchronous=True)
        # the text OmegaConf.to_yaml gives, in a fifteenth of its time
        text = yaml.dump(resolved, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True)
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / names.CONFIG_FILE).write_text(text)
            self.patiently(self.upload, folder)
        # the entity itself: mlflow.data.from_numpy would profile the arrays of every run again
        entity = Dataset(name=dataset.name, digest=dataset.digest()[:32], source_type="code",  # MLflow keeps 36 characters
                       source=json.dumps({"harness.data": dataset.name}),
                       profile=json.dumps({names.TRAIN_SIZE: len(dataset.train), names.VALIDATION_SIZE: len(dataset.validation),
                                           names.TEST_SIZE: len(dataset.test), names.INPUTS: dataset.n_in,
                                           names.OUTPUTS: dataset.n_out}))
        inputs = [DatasetInput(entity, [InputTag("mlflow.data.context", "training")])]
        try:
            self.client.log_inputs(self.run_id, inputs)
        except MlflowException:
            # parallel jobs race to register the experiment's dataset: one insert wins, the other
            # fails on the unique (experiment, name, digest); a second try finds it registered
            self.client.log_inputs(self.run_id, inputs)

    def log_epoch(self, epoch: int, metrics: dict, series: dict | None = None) -> None:
        """The epoch's metrics (step = epoch) and its per-update series (step = updates made)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.pending += [Metric(key, float(value), now, epoch) for key, value in metrics.items()]
        self.pending += [Metric(key, value, now, step) for key, points in (series or {}).items() for step, value in points]
        if time.monotonic() - self.flushed_at >= self.FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.patiently(self.client.log_batch, self.run_id, metrics=self.pending, synchronous=True)  # MLflow chunks it
        self.pending.clear()
        self.flushed_at = time.monotonic()

    def finish(self, result: Result, network: Network) -> None:
        """The curves, series and weights in one upload, then the last metrics with the status in one
        write, then FINISHED: a `status` of finished or diverged is only ever written with the
        last epoch. (MLflow's `log_table` would take four calls, and append a second copy of the
        curves if a retry follows a half-failed call.)"""
        import pandas as pd
        from mlflow.entities import RunTag
        from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

        weights = {f"W{l + 1}": w for l, w in enumerate(network.weights)}
        weights.update({f"b{l + 1}": b for l, b in enumerate(network.biases)})
        tables = [names.CURVES] + ([names.SERIES] if result.series else [])
        with tempfile.TemporaryDirectory() as folder:
            # the metrics again as tables: analysis.loader reads a run in one or two artifact reads
            pd.DataFrame(result.history).rename_axis("epoch").reset_index().to_parquet(Path(folder) / names.CURVES,
                                                                                       index=False)
            if result.series:
                pd.DataFrame([(name, step, value) for name, points in result.series.items() for step, value in points],
                             columns=["metric", "step", "value"]).to_parquet(Path(folder) / names.SERIES, index=False)
            np.savez(Path(folder) / names.WEIGHTS, **weights)
            self.patiently(self.upload, folder)
        tags = {names.STATUS: result.status, names.LOAD_END: load_average(),
                # and the table tag the MLflow UI and analysis.loader look for
                MLFLOW_LOGGED_ARTIFACTS: json.dumps([{"path": table, "type": "table"} for table in tables])}
        if result.diverged_epoch is not None:
            tags[names.DIVERGED_EPOCH] = str(result.diverged_epoch)
        self.patiently(self.client.log_batch, self.run_id, metrics=self.pending,
                       tags=[RunTag(k, v) for k, v in tags.items()], synchronous=True)
        self.pending.clear()
        self.patiently(self.client.set_terminated, self.run_id, "FINISHED")
        self.stopped.set()

    def upload(self, folder: str) -> None:
        """The files in `folder` as artifacts of the run, written straight to its artifact store
        when this process created the run (MLflow's client would read the run to find where)."""
        if self.run_id not in artifact_uris:
            return self.client.log_artifacts(self.run_id, folder)
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        get_artifact_repository(artifact_uris[self.run_id], tracking_uri=self.client.tracking_uri).log_artifacts(folder)

    def abandon(self, status: str, error: str) -> None:
        """End the run FAILED or KILLED, keeping what was measured; never raises. What the store
        refuses is left to `close_unclosed` or to the next launch."""
        self.stopped.set()
        try:  # at once, not patiently: the run is ending
            self.client.log_batch(self.run_id, metrics=self.pending, synchronous=True)
        except Exception:  # noqa: BLE001 - the epochs already written stay; the status below says why
            pass
        try:
            store.end(self.client, self.run_id, status, error)
        except Exception:  # noqa: BLE001
            unclosed[self.run_id] = (status, error)


def close_unclosed(client: MlflowClient) -> None:
    """Try again to end the runs whose end the store refused."""
    for run_id, (status, error) in list(unclosed.items()):
        try:
            store.end(client, run_id, status, error)
            del unclosed[run_id]
        except Exception:  # noqa: BLE001 - still refused: the next launch closes it
            pass


def create_run(client: MlflowClient, experiment: str, name: str, tags: dict[str, str], parent: str | None = None) -> str:
    """A new RUNNING run (a child of `parent` in a sweep) that says which process runs it, and
    under which conditions it is about to train (in the same write)."""
    tags = {**tags, **process_tags(), **git_tags(), **timing_conditions(), names.HEARTBEAT: f"{time.time():.0f}"}
    if parent is not None:
        tags[names.PARENT_RUN_ID] = parent
    info = client.create_run(experiment, run_name=name, tags=tags).info
    artifact_uris[info.run_id] = info.artifact_uri
    return info.run_id


@contextmanager
def recorded(client: MlflowClient, run_id: str, patience: float = 0.0) -> Iterator[Recorder]:
    """The run's recorder; the run ends FAILED with tag `error` if the body raises, KILLED if it
    is stopped. The body ends it FINISHED with `Recorder.finish`."""
    recorder = Recorder(client, run_id, patience)
    try:
        yield recorder
    except Stopped as stop:
        recorder.abandon("KILLED", stop.reason)
        raise
    except BaseException as error:
        recorder.abandon("FAILED", describe(error))
        raise
    finally:
        recorder.stopped.set()
