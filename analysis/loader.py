"""Tracked runs of an MLflow experiment, or of one sweep, as one tidy DataFrame: a row per
(run, metric, step), the run's params as typed columns, its MLflow status and a diverged flag.

Reading every metric history costs one call per run and metric. A finished run also holds its
per-epoch curves as one table artifact (`curves.parquet`, written by `mlflow.log_table`; Parquet
keeps every float exactly, where the JSON table rounds to 10 decimals), so a run
costs one artifact read instead; only the metrics missing from that table (for example
`batch_cost`, stepped by update) and runs without the table (failed or still running) fall back to
`MlflowClient.get_metric_history`. Everything goes through the MLflow client, so a tracking
server works as well as the SQLite file.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

from harness import names

DEFAULT_URI = "sqlite:///mlflow.db"
CURVES = names.CURVES
PARENT_TAG = names.PARENT_RUN_ID
TYPES = {"lr": float, "seed": int, "epochs": int}  # other params stay strings; batch_size below
RUN_COLUMNS = ["run_id", "run_name", "status", "diverged", "diverged_epoch", "test_size", "parent_run_id"]


def readers(tracking_uri: str) -> int:
    """Concurrent reads: a tracking server answers them in parallel; a local store is faster read in turn."""
    return 8 if tracking_uri.startswith(("http:", "https:")) else 1


class AnalysisError(ValueError):
    """Bad input to the analysis (unknown experiment, no runs, missing metric): one line to show."""


def parse_batch_size(value: str) -> int | str:
    return value if value == "full" else int(value)


def client_for(tracking_uri: str) -> mlflow.MlflowClient:
    """A client of an existing store: MLflow would create an empty SQLite file where there is none."""
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise AnalysisError(f"no MLflow store at {path.resolve()} (--tracking-uri {tracking_uri}); run this where "
                                f"the sweep ran, or name its store with --tracking-uri")
    return mlflow.MlflowClient(tracking_uri)


def find_experiment(client: mlflow.MlflowClient, experiment: str):
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise AnalysisError(f"experiment {experiment!r} not found at {client.tracking_uri}; "
                            f"experiments there: {', '.join(names) or 'none'}")
    return found


def find_sweep(client: mlflow.MlflowClient, sweep: str):
    try:
        return client.get_run(sweep)
    except MlflowException:
        raise AnalysisError(f"sweep: no run {sweep!r} at {client.tracking_uri}") from None


def latest_sweep(client: mlflow.MlflowClient, experiment: str):
    """The sweep's parent run (tag role=sweep) started last in the experiment among those with
    training runs of their own (a relaunch whose every job was skipped as finished has none), or
    None when the experiment has no sweep."""
    found = find_experiment(client, experiment)
    for parent in search_all(client, found.experiment_id, f"tags.`{names.ROLE}` = '{names.SWEEP}'", ["start_time DESC"]):
        children = client.search_runs([found.experiment_id], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'", max_results=50)
        if any("lr" in child.data.params for child in children):
            return parent
    return None


def search_all(client: mlflow.MlflowClient, experiment_id: str, filter_string: str = "", order_by: list[str] | None = None) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=1000, order_by=order_by, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def training_runs(client: mlflow.MlflowClient, experiment: str, sweep: str | None = None,
                  run_ids: list[str] | None = None) -> list:
    """The runs that trained a network (they have an `lr` param; a sweep's parent run has none)."""
    found = find_experiment(client, experiment)
    where = ""
    if run_ids is not None:
        where = f"attributes.run_id IN ({', '.join(repr(run_id) for run_id in run_ids)})"
    elif sweep is not None:
        if find_sweep(client, sweep).info.experiment_id != found.experiment_id:
            raise AnalysisError(f"sweep: run {sweep!r} is not in experiment {experiment!r}")
        where = f"tags.`{PARENT_TAG}` = '{sweep}'"
    runs = [run for run in search_all(client, found.experiment_id, where) if "lr" in run.data.params]
    if not runs:
        scope = f"sweep {sweep!r} of experiment {experiment!r}" if sweep else f"experiment {experiment!r}"
        raise AnalysisError(f"{scope} holds no training runs (runs with an lr param)")
    return runs


def test_size(run) -> int | None:
    """The number of test inputs the run was evaluated on, from the profile of its dataset input
    (tracking.Recorder.log_inputs); None for a run logged without one."""
    inputs = run.inputs.dataset_inputs if run.inputs else []
    if not inputs:
        return None
    return json.loads(inputs[0].dataset.profile or "{}").get(names.TEST_SIZE)


def run_columns(run) -> dict:
    """One run's row: identity, status, test set size and params, typed."""
    tags, params = run.data.tags, run.data.params
    row = {
        "run_id": run.info.run_id, "run_name": run.info.run_name, "status": run.info.status,
        "diverged": tags.get(names.STATUS) == names.DIVERGED,
        "diverged_epoch": int(tags[names.DIVERGED_EPOCH]) if names.DIVERGED_EPOCH in tags else None,
        "test_size": test_size(run), "parent_run_id": tags.get(PARENT_TAG),
    }
    for name, value in params.items():
        row[name] = parse_batch_size(value) if name == "batch_size" else TYPES.get(name, str)(value)
    return row


def tables(run) -> set[str]:
    """The metric tables a run logged (names.CURVES, and names.SERIES where it has per-update series)."""
    return {entry.get("path") for entry in json.loads(run.data.tags.get(MLFLOW_LOGGED_ARTIFACTS, "[]"))}


def read_table(run, name: str, tracking_uri: str, folder: Path) -> pa.Table:
    """One of the run's tables with its run_id. Each reading thread reuses its own folder (a folder
    per run costs more to remove than the read itself)."""
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"{run.info.artifact_uri}/{name}",
                                               dst_path=str(folder / str(threading.get_ident())),
                                               tracking_uri=tracking_uri)
    table = pq.read_table(path)
    return table.append_column("run_id", pa.array([run.info.run_id] * len(table), pa.string()))


def read_histories(client: mlflow.MlflowClient, run_id: str, metrics) -> pd.DataFrame:
    return pd.DataFrame([(run_id, key, point.step, point.value) for key in metrics
                         for point in client.get_metric_history(run_id, key)], columns=["run_id", "metric", "step", "value"])


def run_curves(client: mlflow.MlflowClient, run, folder: Path) -> tuple[pa.Table | None, list[pd.DataFrame]]:
    """Every metric point of one run: its curves table where it has one (epoch, a column per
    metric), and in long form (run_id, metric, step, value) its series table where it has one and
    the histories of the metrics neither table holds (runs logged before the tables were)."""
    logged = tables(run)
    curves = read_table(run, CURVES, client.tracking_uri, folder) if CURVES in logged else None
    series = (read_table(run, names.SERIES, client.tracking_uri, folder).to_pandas()
              if names.SERIES in logged else pd.DataFrame(columns=["metric"]))
    covered = (set(curves.column_names) if curves is not None else set()) | set(series.metric)
    return curves, [series, read_histories(client, run.info.run_id, [key for key in run.data.metrics if key not in covered])]


def long_form(curves: list[pa.Table], points: list[pd.DataFrame]) -> pd.DataFrame:
    """run_id, metric, step, value from the curves tables (joined once per set of columns, as
    per-run pandas work would cost more than reading) and from the points already in long form."""
    by_columns: dict[tuple, list[pa.Table]] = {}
    for table in curves:
        by_columns.setdefault(tuple(table.column_names), []).append(table)
    parts = [pa.concat_tables(group).to_pandas().rename(columns={"epoch": "step"})
             .melt(id_vars=["run_id", "step"], var_name="metric", value_name="value") for group in by_columns.values()]
    long = pd.concat([part for part in parts + points if len(part)], ignore_index=True)
    return long.astype({"run_id": str, "metric": str, "step": "int64", "value": "float64"})


def tidy(runs: list, points: pd.DataFrame) -> pd.DataFrame:
    """Metric points joined with each run's typed columns; params after the run's identity."""
    info = pd.DataFrame([run_columns(run) for run in runs])
    for name in ("diverged_epoch", "test_size", "seed", "epochs"):
        if name in info:
            info[name] = info[name].astype("Int64")
    params = [c for c in ("lr", "batch_size", "seed", "epochs") if c in info]
    params += sorted(c for c in info if c not in RUN_COLUMNS and c not in params)
    columns = RUN_COLUMNS + params + ["metric", "step", "value"]
    return info[RUN_COLUMNS + params].merge(points, on="run_id")[columns].sort_values(
        ["run_id", "metric", "step"], ignore_index=True)


def load_runs(experiment: str, tracking_uri: str = DEFAULT_URI, sweep: str | None = None,
              run_ids: list[str] | None = None) -> pd.DataFrame:
    """Columns: run_id, run_name, status (MLflow's), diverged, diverged_epoch, test_size (the test
    inputs of the run's dataset input; NA without one), parent_run_id, the params (lr float,
    batch_size int or "full", seed and epochs int, others str), metric, step, value.

    `sweep` is the run id of a sweep's parent run: only its child runs are read; `run_ids`: only these.
    """
    client = client_for(tracking_uri)
    runs = training_runs(client, experiment, sweep, run_ids)
    with (tempfile.TemporaryDirectory() as folder,
          mock.patch.dict(os.environ, {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}),
          ThreadPoolExecutor(readers(tracking_uri)) as pool):
        read = list(pool.map(lambda run: run_curves(client, run, Path(folder)), runs))
    return tidy(runs, long_form([curves for curves, _ in read if curves is not None],
                                [part for _, parts in read for part in parts]))


def tracked(runs: pd.DataFrame) -> set[str]:
    """The metrics tracked by any of the runs (unique() hashes in C: set() of a column of a
    million points takes a hundred times longer)."""
    return set(runs.metric.unique())


def require_metric(runs: pd.DataFrame, metric: str) -> None:
    """Stop with one line if `metric` was not tracked by any of the runs."""
    if metric not in (found := tracked(runs)):
        raise AnalysisError(f"metric {metric!r} not tracked in these runs; tracked: {', '.join(sorted(found))}")
