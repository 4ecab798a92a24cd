"""Runs of an MLflow experiment as one tidy DataFrame: a row per (run, metric, step)."""

from __future__ import annotations

import mlflow
import pandas as pd

DEFAULT_URI = "sqlite:///mlflow.db"


def parse_batch_size(value: str) -> int | str:
    return value if value == "full" else int(value)


def load_runs(experiment: str, tracking_uri: str = DEFAULT_URI) -> pd.DataFrame:
    """Columns: run_id, run_name, status, lr, batch_size, seed, metric, step, value."""
    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise SystemExit(f"error: experiment {experiment!r} not found in {tracking_uri}; it has: {', '.join(names)}")
    rows = []
    for run in client.search_runs([found.experiment_id], max_results=50_000):
        params = run.data.params
        if "lr" not in params:
            continue  # a sweep's parent run holds no curves
        for metric in run.data.metrics:
            for point in client.get_metric_history(run.info.run_id, metric):
                rows.append({
                    "run_id": run.info.run_id, "run_name": run.info.run_name, "status": run.info.status,
                    "lr": float(params["lr"]), "batch_size": parse_batch_size(params["batch_size"]),
                    "seed": int(params["seed"]), "metric": metric, "step": point.step, "value": point.value,
                })
    if not rows:
        raise SystemExit(f"error: experiment {experiment!r} holds no runs with metrics")
    return pd.DataFrame(rows)
