"""Recording a job as an MLflow run, and keeping the store truthful about it.

A run holds the resolved config (params and the artifact `config.yaml`), the dataset it saw (an
MLflow dataset input with its digest), per-epoch metrics (one batched call per epoch), its final
status and weights. It ends FINISHED, FAILED (tag `error`) or KILLED (on SIGINT/SIGTERM); a run
whose process vanished without ending it (SIGKILL, power loss) is marked KILLED at the next launch,
found by the host, pid and process start time every run records.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from .config import ConfigError
from .data import Dataset
from .network import Network
from .train import Result

# MLflow retries an unreachable server 7 times with exponential backoff (minutes); fail in seconds
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
# settings that change where or how fast a job runs, or how it is described, not what it computes:
# left out of the config hash
EXECUTION_KEYS = ("tracking", "blas_threads", "study")
DATA_LOCATION_KEYS = ("root", "download")


class Killed(BaseException):
    """SIGINT or SIGTERM arrived: end the open runs KILLED, then stop."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# SIGINT and SIGTERM become Killed, raised where the main thread is, so that the open runs can be
# ended KILLED. Two places need care. Inside MLflow's calls (`signals_held`), a Killed could leave
# a lock or a database transaction of MLflow's half done, and the calls that end the runs would
# then hang; there the signal is only kept. And a handler can run inside a weakref callback or a
# __del__, where Python prints the Killed and carries on. Either way `received` keeps the
# signal, and `check_signals` raises it at the next epoch, run or end of sweep.
received: int | None = None
_held = False


def _raise_killed(signum, frame):
    global received
    received = signum
    if not _held:
        raise Killed(signum)


def check_signals() -> None:
    """Raise Killed for a signal received whose Killed was held or lost."""
    if received is not None:
        raise Killed(received)


@contextmanager
def signals_held(hold: bool = True) -> Iterator[None]:
    """Around MLflow calls: a signal does not interrupt them (`hold=False`: it does again)."""
    global _held
    before, _held = _held, hold
    try:
        yield
    finally:
        _held = before


# runs this process opened outside `tracked_run` (a sweep's parent), ended KILLED if a signal stops it
open_runs: set[str] = set()


@signals_held()
def end_open_runs(status: str) -> None:
    client = MlflowClient()
    for run_id in open_runs:
        client.set_terminated(run_id, status)
    open_runs.clear()


def stop_on_signals() -> None:
    """Turn SIGINT and SIGTERM into Killed, so the run in progress can be ended KILLED."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _raise_killed)


@signals_held()
def connect(uri: str) -> None:
    """Point MLflow at the store; an unreachable server is a one-line error within seconds."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5).close()
        except (OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise ConfigError(f"tracking.uri: cannot reach the MLflow server at {uri} ({reason}); "
                              f"start it (`mlflow server`) or use tracking=sqlite") from None
    mlflow.set_tracking_uri(uri)


@signals_held()
def experiment_id(name: str) -> str:
    """The id of the named experiment, created (with the store) if it does not exist yet."""
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(name).experiment_id


def config_hash(cfg: DictConfig) -> str:
    """sha256 of what the job computes: the resolved config without where it runs or is tracked,
    so the same study matches across stores and machines; the seed is part of it."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in EXECUTION_KEYS:
        resolved.pop(key, None)
    for key in DATA_LOCATION_KEYS:
        (resolved.get("data") or {}).pop(key, None)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), "" if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5), counted after the command name


def process_alive(pid: int, start: str) -> bool:
    if Path("/proc/self/stat").exists():
        return process_start(pid) == start != ""  # a reused pid has another start time
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_tags() -> dict[str, str]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": str(pid), "process_start": process_start(pid)}


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
    return {"git_commit": commit.stdout.strip(), "git_dirty": str(bool(dirty)).lower()}


@signals_held()
def close_abandoned(experiment: str) -> list[str]:
    """Mark KILLED each RUNNING run of this host whose process is gone; return their ids."""
    client, host = MlflowClient(), socket.gethostname()
    running = client.search_runs([experiment], f"attributes.status = 'RUNNING' and tags.host = '{host}'",
                                 max_results=10_000)
    closed = []
    for run in running:
        tags = run.data.tags
        if "pid" in tags and not process_alive(int(tags["pid"]), tags.get("process_start", "")):
            client.set_tag(run.info.run_id, "error", f"process {tags['pid']} on {host} ended without closing the run")
            client.set_terminated(run.info.run_id, "KILLED")
            closed.append(run.info.run_id)
    return closed


@signals_held()
def finished_run(experiment: str, digest: str):
    """A FINISHED run of this experiment with this config hash, or None."""
    runs = MlflowClient().search_runs([experiment], f"attributes.status = 'FINISHED' and tags.config_hash = '{digest}'",
                                      max_results=1)
    return runs[0] if runs else None


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


def log_dataset(dataset: Dataset) -> None:
    """The training data as the run's MLflow dataset input, named and identified by its digest."""
    data = mlflow.data.from_numpy(dataset.train.X, targets=dataset.train.Y, name=dataset.name,
                                  digest=dataset.digest()[:32])  # MLflow stores at most 36 characters
    try:
        mlflow.log_input(data, context="training")
    except MlflowException:
        # parallel jobs race to register the experiment's dataset: one insert wins, the other
        # fails on the unique (experiment, name, digest); a second try finds it registered
        mlflow.log_input(data, context="training")


@contextmanager
def tracked_run(cfg: DictConfig, experiment: str, name: str, tags: dict[str, str], dataset: Dataset,
                parent_run_id: str | None = None) -> Iterator["Tracker"]:
    """An MLflow run holding the resolved config and the dataset; FAILED with tag `error` if the
    body raises, KILLED on SIGINT/SIGTERM, FINISHED otherwise."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    tags = {**tags, **process_tags(), **git_tags(), "config_hash": config_hash(cfg)}
    stop_on_signals()
    check_signals()
    with signals_held():
        run = mlflow.start_run(experiment_id=experiment, run_name=name, parent_run_id=parent_run_id, tags=tags)
        tracker = Tracker(run.info.run_id)
        try:
            mlflow.log_params(flatten(resolved))
            mlflow.log_text(OmegaConf.to_yaml(resolved), "config.yaml")
            log_dataset(dataset)
            with signals_held(False):  # the body trains, and holds signals around its own MLflow calls
                yield tracker
            tracker.flush()
        except Killed as signal_received:
            tracker.flush()  # what was measured before the signal is kept
            mlflow.set_tag("error", f"killed by {signal_received}")
            mlflow.end_run("KILLED")
            raise
        except Exception as error:
            tracker.flush()
            mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:5000])
            mlflow.end_run("FAILED")
            raise
        mlflow.end_run("FINISHED")


class Tracker:
    """Writes a run's metrics in batches. Each write to SQLite is a transaction of a few ms, and
    parallel jobs queue for the file's lock, so epochs shorter than `FLUSH_SECONDS` are written
    together; the store is never more than that behind the training."""

    FLUSH_SECONDS = 1.0
    BATCH_LIMIT = 1000  # metrics per MLflow log_batch call

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.pending: list[Metric] = []
        self.flushed_at = time.monotonic()

    def log_epoch(self, epoch: int, metrics: dict, series: dict | None = None) -> None:
        """The epoch's metrics (step = epoch) and its per-step series (step = updates made)."""
        now = int(time.time() * 1000)
        self.pending += [Metric(key, float(value), now, epoch) for key, value in metrics.items()]
        self.pending += [Metric(key, value, now, step) for key, points in (series or {}).items() for step, value in points]
        if time.monotonic() - self.flushed_at >= self.FLUSH_SECONDS:
            self.flush()
        check_signals()

    @signals_held()
    def flush(self) -> None:
        client = MlflowClient()
        for start in range(0, len(self.pending), self.BATCH_LIMIT):
            client.log_batch(self.run_id, metrics=self.pending[start:start + self.BATCH_LIMIT], synchronous=True)
        self.pending.clear()
        self.flushed_at = time.monotonic()

    @signals_held()
    def log_result(self, result: Result, network: Network) -> None:
        tags = {"status": result.status}
        if result.diverged_epoch is not None:
            tags["diverged_epoch"] = str(result.diverged_epoch)
        mlflow.set_tags(tags)
        # the per-epoch curves again as one table: analysis.loader reads a run in one artifact read
        mlflow.log_table(pd.DataFrame(result.history).rename_axis("epoch").reset_index(), "curves.parquet")
        weights = {f"W{l + 1}": w for l, w in enumerate(network.weights)}
        weights.update({f"b{l + 1}": b for l, b in enumerate(network.biases)})
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "weights.npz"
            np.savez(path, **weights)
            mlflow.log_artifact(str(path))
