"""Time `analysis.loader.load_runs` against the naive way (one `get_metric_history` call per run
and metric) on a fresh SQLite store of 500 runs × 30 epochs × 4 metrics, laid out as the harness
tracks them (params, status tag, metrics per epoch and the `curves.json` table).

    python benchmarks/loader.py [--runs 500] [--epochs 30] [--rounds 5]

The two ways alternate over --rounds rounds (at least 5), on one BLAS thread; each time is
printed as the median and spread of its rounds. Target: the loader reads the store in at most 5 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param, RunTag

from analysis.loader import CURVES, load_runs
from timing import load, pin_blas, rounds, spread

METRICS = ["train_cost", "validation_accuracy", "steps", "train_time"]
TARGET_SECONDS = 5.0


def curves(rng: np.random.Generator, epochs: int) -> pd.DataFrame:
    epoch = np.arange(epochs + 1)
    return pd.DataFrame({"epoch": epoch, "train_cost": 0.5 * np.exp(-epoch / 10) * rng.uniform(0.9, 1.1),
                         "validation_accuracy": 1 - np.exp(-epoch / 5), "steps": 150 * epoch,
                         "train_time": 0.01 * epoch})


def make_store(uri: str, n_runs: int, epochs: int) -> None:
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("benchmark")
    rng = np.random.default_rng(0)
    for i in range(n_runs):
        run = client.create_run(experiment, run_name=f"run{i}")
        table = curves(rng, epochs)
        metrics = [Metric(key, float(value), 0, int(epoch))
                   for epoch, row in table.set_index("epoch").iterrows() for key, value in row.items()]
        params = [Param("lr", str([0.1, 0.3, 1.0, 3.0, 10.0][i % 5])), Param("batch_size", ["10", "100", "full"][i % 3]),
                  Param("seed", str(i // 15)), Param("epochs", str(epochs))]
        client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=[RunTag("status", "finished")])
        client.log_table(run.info.run_id, table, CURVES)
        client.set_terminated(run.info.run_id)


def naive(uri: str, experiment: str) -> pd.DataFrame:
    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    rows = [(run.info.run_id, key, point.step, point.value)
            for run in client.search_runs([found.experiment_id], max_results=50_000)
            for key in run.data.metrics for point in client.get_metric_history(run.info.run_id, key)]
    return pd.DataFrame(rows, columns=["run_id", "metric", "step", "value"])


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def same_points(fast: pd.DataFrame, slow: pd.DataFrame) -> bool:
    key = ["run_id", "metric", "step"]
    return fast[key + ["value"]].sort_values(key).reset_index(drop=True).equals(slow.sort_values(key).reset_index(drop=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of both ways (at least 5)")
    args = parser.parse_args()
    pinned = pin_blas(1)
    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{Path(folder) / 'mlflow.db'}"
        _, made = timed(make_store, uri, args.runs, args.epochs)
        print(f"store: {args.runs} runs × {args.epochs} epochs × {len(METRICS)} metrics, made in {made:.1f} s; {pinned}")
        print(f"at the start: {load()}")
        tables = {}

        def way(name, function):
            def run():
                tables[name], seconds = timed(function, "benchmark", uri) if name == "fast" else timed(function, uri, "benchmark")
                return {"seconds": seconds}
            return run

        samples = rounds({"fast": way("fast", load_runs), "slow": way("slow", naive)}, args.rounds)
        print(f"at the end:   {load()}")
    fast, slow = samples["fast"]["seconds"], samples["slow"]["seconds"]
    print(f"load_runs:                           {spread(fast)}  ({len(tables['fast'])} rows)  target ≤ {TARGET_SECONDS:.0f} s")
    print(f"naive get_metric_history per metric: {spread(slow)}  ({len(tables['slow'])} rows)")
    print(f"speed-up: {spread([s / f for f, s in zip(fast, slow)], '×')}; same points: "
          f"{same_points(tables['fast'], tables['slow'])}")


if __name__ == "__main__":
    main()
