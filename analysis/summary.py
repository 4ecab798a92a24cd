"""Numbers behind the figures and the report, computed from the loader's tidy DataFrame: per-epoch
curves, each run's final cost and best accuracy, the steps it took to reach a target, the mean
with a 95% confidence interval over seeds, and the best lr for each batch size.

A configuration is one (batch_size, lr) pair; its runs differ by seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .loader import AnalysisError, require_metric

CONFIG = ["batch_size", "lr"]
RUN = ["run_id", "status", "diverged", "diverged_epoch", "seed", *CONFIG]


def batch_sizes(values) -> list:
    """Distinct batch sizes, smallest first; `full` (the whole training set) last."""
    distinct = set(values)
    return sorted(v for v in distinct if v != "full") + (["full"] if "full" in distinct else [])


def batch_label(batch_size) -> str:
    return "full batch (GD)" if batch_size == "full" else f"m = {batch_size}"


def per_epoch(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per (run, epoch): the run's columns and one column per metric."""
    for metric in metrics:
        require_metric(runs, metric)
    points = runs[runs.metric.isin(metrics)]
    wide = points.pivot_table(index=["run_id", "step"], columns="metric", values="value").reset_index()
    wide = wide.rename(columns={"step": "epoch"}).rename_axis(columns=None)
    return runs[RUN].drop_duplicates("run_id").merge(wide, on="run_id").sort_values(["run_id", "epoch"], ignore_index=True)


def mean_ci(values, geometric: bool = False) -> tuple[float, float, float]:
    """Mean and its 95% confidence interval (Student's t over the seeds; no width for one seed).
    Geometric: the same on log values, mapped back, for quantities drawn on a log axis (the
    interval then stays positive and symmetric on that axis)."""
    values = np.log(np.asarray(values, dtype=float)) if geometric else np.asarray(values, dtype=float)
    mean = float(values.mean())
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    interval = (mean, mean - half, mean + half)
    return tuple(float(np.exp(v)) for v in interval) if geometric else interval


def aggregate(frame: pd.DataFrame, by: list[str], x: str, y: str, geometric: bool = False) -> pd.DataFrame:
    """Mean of x and of y over the runs in each group of `by` + [epoch], with y's 95% interval.
    Groups are per epoch, so an x that varies between seeds (training time) is averaged too."""
    rows = []
    for key, group in frame.groupby(by + ["epoch"], sort=True):
        mean, low, high = mean_ci(group[y], geometric)
        rows.append((*key, group[x].mean(), mean, low, high, len(group)))
    return pd.DataFrame(rows, columns=by + ["epoch", x + "_mean", "mean", "low", "high", "n"]).sort_values(by + ["epoch"])


def finals(runs: pd.DataFrame, cost: str = "train_cost", accuracy: str | None = None) -> pd.DataFrame:
    """One row per run: its last cost (`final_cost`, NaN for a diverged run, whose last finite cost is
    `last_cost` at `last_epoch`), its initial cost and, if asked, its best accuracy over epochs."""
    metrics = [cost] + ([accuracy] if accuracy else [])
    curves = per_epoch(runs, metrics)
    last = curves.loc[curves.groupby("run_id").epoch.idxmax()].set_index("run_id")
    first = curves.loc[curves.groupby("run_id").epoch.idxmin()].set_index("run_id")
    table = last[RUN[1:]].copy()
    table["last_epoch"] = last.epoch
    table["last_cost"] = last[cost]
    table["final_cost"] = last[cost].where(~last.diverged)
    table["initial_cost"] = first[cost]
    if accuracy:
        table["best_accuracy"] = curves.groupby("run_id")[accuracy].max()
    return table.reset_index()


def full_batch_size(runs: pd.DataFrame) -> int | None:
    """n, the number of training inputs: the examples per update of a full-batch run (None if
    there is no full-batch run that made an update)."""
    full = runs[(runs.batch_size == "full") & runs.metric.isin(["examples", "steps"])]
    if set(full.metric) != {"examples", "steps"}:
        return None
    curves = per_epoch(full, ["examples", "steps"])
    stepped = curves[curves.steps > 0]
    return int(round(stepped.examples.iloc[0] / stepped.steps.iloc[0])) if len(stepped) else None


def batch_size_value(batch_size, n: int | None) -> float:
    """The batch size as a number: n for `full` (NaN when n is unknown)."""
    if batch_size == "full":
        return float(n) if n else np.nan
    return float(batch_size)


def crossing(curve: pd.DataFrame, metric: str, target: float, lower_is_better: bool) -> tuple[float, float]:
    """(epochs, steps) when the metric first meets the target, interpolated linearly between the
    two epochs around the crossing; (nan, nan) if it never does."""
    values = curve[metric].to_numpy()
    met = values <= target if lower_is_better else values >= target
    if not met.any():
        return np.nan, np.nan
    i = int(np.argmax(met))
    epochs, steps = curve.epoch.to_numpy(dtype=float), curve.steps.to_numpy(dtype=float)
    if i == 0:
        return epochs[0], steps[0]
    fraction = (target - values[i - 1]) / (values[i] - values[i - 1])
    return epochs[i - 1] + fraction * (epochs[i] - epochs[i - 1]), steps[i - 1] + fraction * (steps[i] - steps[i - 1])


def to_target(runs: pd.DataFrame, metric: str, target: float) -> pd.DataFrame:
    """One row per run: epochs and steps (updates) to reach the target; NaN where it never does.
    Costs must fall to the target, accuracies rise to it."""
    lower_is_better = not metric.endswith("accuracy")
    curves = per_epoch(runs, [metric, "steps"])
    rows = [(run_id, *crossing(curve, metric, target, lower_is_better)) for run_id, curve in curves.groupby("run_id")]
    reached = pd.DataFrame(rows, columns=["run_id", "epochs_to_target", "steps_to_target"])
    return curves[RUN].drop_duplicates("run_id").merge(reached, on="run_id")


def default_target(runs: pd.DataFrame, metric: str) -> float:
    """A target every batch size reaches with its best lr on every seed: the worst, over batch
    sizes, of the best (over lr) of the worst (over seeds) value each run ever reached."""
    lower_is_better = not metric.endswith("accuracy")
    curves = per_epoch(runs, [metric])
    reached = curves.groupby("run_id")[metric].agg("min" if lower_is_better else "max")
    per_run = curves[RUN].drop_duplicates("run_id").set_index("run_id").assign(reached=reached)
    worst_seed = per_run.groupby(CONFIG).reached.agg("max" if lower_is_better else "min")
    best_lr = worst_seed.groupby(level="batch_size").agg("min" if lower_is_better else "max")
    return float(best_lr.max() if lower_is_better else best_lr.min())


def fastest_to_target(reached: pd.DataFrame, geometric: bool = False) -> pd.DataFrame:
    """For each batch size, the lr whose seeds all reach the target, none diverging, in the fewest
    mean steps:
    batch_size, lr, steps (mean), low, high (95% interval), epochs; batch sizes where no lr
    reaches it have lr NaN."""
    rows = []
    for batch_size in batch_sizes(reached.batch_size):
        configs = reached[reached.batch_size == batch_size].groupby("lr")
        complete = {lr: group for lr, group in configs
                    if group.steps_to_target.notna().all() and not group.diverged.any()}
        if not complete:
            rows.append((batch_size, np.nan, np.nan, np.nan, np.nan, np.nan))
            continue
        lr = min(complete, key=lambda lr: complete[lr].steps_to_target.mean())
        rows.append((batch_size, lr, *mean_ci(complete[lr].steps_to_target, geometric),
                     complete[lr].epochs_to_target.mean()))
    return pd.DataFrame(rows, columns=["batch_size", "lr", "steps", "low", "high", "epochs"])


def best_lr(table: pd.DataFrame) -> dict:
    """For each batch size, the lr with the lowest mean final cost among configurations none of
    whose runs diverged (from `finals`)."""
    stable = table.groupby(CONFIG).filter(lambda group: not group.diverged.any())
    means = stable.groupby(CONFIG).final_cost.mean().reset_index()
    return {b: means.loc[group.final_cost.idxmin(), "lr"] for b, group in means.groupby("batch_size")}


def check_target(value: float | None, metric: str) -> None:
    if value is not None and metric.endswith("accuracy") and not 0 < value <= 1:
        raise AnalysisError(f"target accuracy: {value} must be a fraction in (0, 1]")
    if value is not None and not metric.endswith("accuracy") and not value > 0:
        raise AnalysisError(f"target cost: {value} must be a number > 0")
