"""Numbers behind the figures and the report, computed from the loader's tidy DataFrame.

A configuration is one (batch_size, lr) pair; its runs differ by seed. The rules every figure and
table follows, each computed here once:

- Averages over seeds (AVERAGING): costs and update counts are averaged geometrically (they are
  drawn on log axes and compared as ratios), accuracies arithmetically; spread is the range of
  the seeds themselves, never a t-interval (two or three seeds cannot give one worth drawing).
- A run's outcome: `diverged` (the harness stopped it), `did not learn` (its final validation
  accuracy, or without one its training cost on a log scale, got less than LEARNED of the way from
  the untrained network to the best run of the sweep: stalled at chance or at a saturated cost), or
  `learned`. Only a configuration whose every seed learned can be a best.
- The best η for a batch size, among its configurations whose every seed learned: the one whose
  slowest seed reaches every target (cost and accuracy) in the fewest updates (Shallue et al.
  2018); where none gets every seed there, the lowest final training cost on its worst seed.
  Worst seeds, as one lucky seed does not make an η best; a first passage, as a late spike of a
  noisy run does not undo it. Flagged when it is the smallest or largest η tried at that m (the
  grid may not bracket it) or the only one.
- Targets: stated by the study (`study.target_cost`, `study.target_accuracy`) or on the command
  line; otherwise one the good runs reach and chance cannot, relative to the best run.
- Updates to a target: the first measured point at or past it (scheduled evaluations,
  `*_by_update`, where the run has them; else the epochs), never interpolated; a run that never
  gets there is censored at its last measured update. The measurement before it bounds it from
  below: the run reached the target somewhere between the two, the resolution of its schedule.
- Headline numbers (the best η, the updates, examples, epochs and seconds to a target, B_crit)
  come with their interval over seeds (uncertainty.over_seeds), which for updates to a target
  spans the resolution too: from the resamples of the measurements before the target to those
  at it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from harness import names

from .loader import AnalysisError, require_metric, tracked
from .uncertainty import Estimate, geometric_mean, over_seeds

CONFIG = ["batch_size", "lr"]
RUN = ["run_id", "status", "diverged", "diverged_epoch", "seed", *CONFIG]
COST, ACCURACY, TEST_ACCURACY = names.TRAIN_COST, names.VALIDATION_ACCURACY, names.TEST_ACCURACY
AVERAGING = ("costs and update counts are geometric means over seeds, accuracies arithmetic means; "
             "bands and bars span the seeds (minimum to maximum)")
LEARNED = 0.25  # a run that got less than this fraction of the way to the best run did not learn
LEARNED_RULE = (f"less than {LEARNED:.0%} of the way from the untrained network to the best run (validation accuracy, "
                "or training cost on a log scale without one; the best run counting as at least halfway from "
                "chance to 100%, or a decade of cost)")
ACCURACY_PROGRESS = 0.9  # default accuracy target: this fraction of the way from chance to the best run
LEARNED_OUTCOME, STALLED, DIVERGED = "learned", "did not learn", "diverged"


def batch_sizes(values) -> list:
    """Distinct batch sizes, smallest first; `full` (the whole training set) last."""
    distinct = set(values)
    return sorted(v for v in distinct if v != "full") + (["full"] if "full" in distinct else [])


def batch_order(value) -> float:
    """Sort key that puts `full` after every integer batch size."""
    return math.inf if value == "full" else float(value)


def batch_label(batch_size) -> str:
    return "full batch (GD)" if batch_size == "full" else f"m = {batch_size}"


def average(metric: str):
    """The one averaging convention: geometric for costs and counts, arithmetic for accuracies."""
    return (lambda values: float(np.mean(values))) if names.is_accuracy(metric) else geometric_mean


def per_epoch(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per (run, epoch): the run's columns and one column per metric."""
    for metric in metrics:
        require_metric(runs, metric)
    points = runs[runs.metric.isin(metrics)]
    wide = points.pivot_table(index=["run_id", "step"], columns="metric", values="value").reset_index()
    wide = wide.rename(columns={"step": "epoch"}).rename_axis(columns=None)
    return runs[RUN].drop_duplicates("run_id").merge(wide, on="run_id").sort_values(["run_id", "epoch"], ignore_index=True)


def spread(frame: pd.DataFrame, by: list[str], x: str, y: str) -> pd.DataFrame:
    """Per group of `by` + [epoch]: x averaged, y's average (AVERAGING) and the seeds' minimum and
    maximum. Groups are per epoch, so an x that varies between seeds (training time) is averaged too."""
    values = frame[y].astype(float)
    geometric = not names.is_accuracy(y)
    with np.errstate(divide="ignore"):  # a cost of 0 makes the geometric mean 0, as geometric_mean
        averaged = np.log(values) if geometric else values
    columns = frame[by + ["epoch"]].assign(_x=frame[x].astype(float), _y=values, _a=averaged, _nan=values.isna())
    groups = columns.groupby(by + ["epoch"], sort=True)  # only the columns aggregated, not the runs' params
    found = groups.agg(**{x + "_mean": ("_x", "mean"), "mean": ("_a", "mean"), "low": ("_y", "min"),
                          "high": ("_y", "max"), "n": ("_y", "size"), "nan": ("_nan", "any")})
    if geometric:  # exp(mean(log)) kept within the values' range, and NaN with a NaN value, as geometric_mean
        found["mean"] = np.clip(np.exp(found["mean"]), found.low, found.high).where(~found.nan)
    return found.drop(columns="nan").reset_index()


def finals(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: initial and final training cost (`final_cost` NaN for a diverged run,
    whose last finite cost is `last_cost` at `last_epoch`), initial and final validation and test
    accuracy where tracked, and its `outcome` (learned, did not learn, diverged) with the
    `progress` it is judged by."""
    accuracies = [m for m in (ACCURACY, TEST_ACCURACY) if m in tracked(runs)]
    curves = per_epoch(runs, [COST, *accuracies])
    last = curves.loc[curves.groupby("run_id").epoch.idxmax()].set_index("run_id")
    first = curves.loc[curves.groupby("run_id").epoch.idxmin()].set_index("run_id")
    table = last[RUN[1:]].copy()
    table["last_epoch"] = last.epoch
    table["last_cost"] = curves.dropna(subset=[COST]).groupby("run_id")[COST].last()  # where it was last measured
    table["initial_cost"] = first[COST]
    table["final_cost"] = last[COST].where(~last.diverged)
    for metric in accuracies:
        table[f"initial_{metric}"] = first[metric]
        table[f"final_{metric}"] = last[metric].where(~last.diverged)
    table = table.reset_index()
    table["progress"] = progress(table)
    table["outcome"] = np.where(table.diverged, DIVERGED, np.where(table.progress < LEARNED, STALLED, LEARNED_OUTCOME))
    return table


def chance_accuracy(table: pd.DataFrame) -> float:
    """The accuracy of guessing: the untrained networks' validation accuracy (median over runs)."""
    return float(table[f"initial_{ACCURACY}"].median())


def progress(table: pd.DataFrame) -> pd.Series:
    """How far each run got from the untrained network towards the best run of the sweep (1 = as
    far as the best): in validation accuracy above chance where tracked, else in training cost on a
    log scale. The best run counts as at least halfway from chance to perfect accuracy, or a decade
    below the untrained cost, so that in a sweep where nothing learns nothing is called learned.
    NaN for diverged runs."""
    if f"final_{ACCURACY}" in table:
        chance = chance_accuracy(table)
        best = max(table[f"final_{ACCURACY}"].max(), chance + 0.5 * (1 - chance))
        return (table[f"final_{ACCURACY}"] - chance) / (best - chance)
    best = np.minimum(table.final_cost.min(), table.initial_cost / 10)
    return np.log(table.initial_cost / table.final_cost) / np.log(table.initial_cost / best)


def best_lr(table: pd.DataFrame, reached: list[pd.DataFrame] = ()) -> pd.DataFrame:
    """For each batch size (from `finals`): `lr`, the best η (NaN when no configuration learned on
    every seed), `by` the rule that chose it ("updates to target" from the `to_target` tables in
    `reached`, a run counting the updates by which it met them all; else "final cost"), its mean
    `cost`, `accuracy` and `test_accuracy`, its `seeds`, the η `grid` tried at that m, and `edge`:
    "lowest" or "highest" when the best is at that end of the grid, "only" when the grid is one
    η, else ""."""
    slowest = (pd.concat([r.set_index("run_id").updates for r in reached], axis=1).max(axis=1, skipna=False)
               if len(reached) else None)
    rows = []
    for batch_size in batch_sizes(table.batch_size):
        runs = table[table.batch_size == batch_size]
        grid = sorted(runs.lr.unique())
        learned = runs.groupby("lr").filter(lambda g: (g.outcome == LEARNED_OUTCOME).all())
        row = {"batch_size": batch_size, "lr": np.nan, "by": "", "cost": np.nan, "accuracy": np.nan,
               "test_accuracy": np.nan, "seeds": 0, "grid": grid, "edge": ""}
        if len(learned):
            updates = (learned.run_id.map(slowest) if slowest is not None else pd.Series(np.nan, learned.index))
            worst = learned.assign(updates=updates).groupby("lr").agg(updates=("updates", lambda u: u.max(skipna=False)),
                                                                      cost=("final_cost", "max"))
            fastest = worst.updates.dropna()
            lr, by = (fastest.idxmin(), "updates to target") if len(fastest) else (worst.cost.idxmin(), "final cost")
            best = learned[learned.lr == lr]
            row.update(lr=lr, by=by, cost=geometric_mean(best.final_cost), seeds=len(best),
                       edge="only" if len(grid) == 1 else "lowest" if lr == grid[0] else "highest" if lr == grid[-1] else "")
            for key, metric in (("accuracy", ACCURACY), ("test_accuracy", TEST_ACCURACY)):
                if f"final_{metric}" in best:
                    row[key] = best[f"final_{metric}"].mean()
        rows.append(row)
    return pd.DataFrame(rows)


def beyond_edges(best: pd.DataFrame) -> dict:
    """{batch size: the η one grid step beyond its best}, for each batch size (of `best_lr`) whose
    best η is the lowest or highest of a grid of several: the next η to try so that the grid
    brackets it. The step is the ratio between the η at that end of the grid and its neighbour."""
    following = {}
    for row in best[best.edge.isin(["lowest", "highest"])].itertuples():
        grid = row.grid
        following[row.batch_size] = grid[0] ** 2 / grid[1] if row.edge == "lowest" else grid[-1] ** 2 / grid[-2]
    return following


@dataclass(frozen=True)
class Target:
    metric: str  # the per-epoch metric; its scheduled form is names.by_update(metric)
    value: float
    how: str  # where the value comes from, for the report

    @property
    def lower_is_better(self) -> bool:
        return not names.is_accuracy(self.metric)

    def met(self, values) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return values <= self.value if self.lower_is_better else values >= self.value

    def describe(self) -> str:
        what = "training cost" if self.metric == COST else "validation accuracy" if self.metric == ACCURACY else self.metric
        return f"{what} {'≤' if self.lower_is_better else '≥'} {self.value:.3g}"


def stated(runs: pd.DataFrame, key: str) -> float | None:
    """A target the study states in its config (`study.<key>`, a param of every run), or None."""
    column = f"study.{key}"
    if column not in runs:
        return None
    values = {str(v) for v in runs[column].dropna()} - {"None", "null", ""}
    if len(values) > 1:
        raise AnalysisError(f"{column}: the runs state different targets ({', '.join(sorted(values))}); report one sweep")
    return float(values.pop()) if values else None


def budget_of(runs: pd.DataFrame) -> str | None:
    """The budget that ended every run, '1,500 updates' (budget.updates) or '20,000 inputs seen'
    (budget.examples); None where the runs trained for their epochs."""
    for key, unit in (("budget.updates", "updates"), ("budget.examples", "inputs seen")):
        values = {str(v) for v in runs[key].dropna()} - {"None", "null", ""} if key in runs else set()
        if len(values) == 1:
            return f"{int(float(values.pop())):,} {unit}"
    return None


def run_length(runs: pd.DataFrame, table: pd.DataFrame) -> str:
    """How long every run trained: '1,500 updates each' (budget_of), else '30 epochs' (the longest
    run of the `finals` table)."""
    budget = budget_of(runs)
    return f"{budget} each" if budget else f"{int(table.last_epoch.max())} epochs"


def default_cost_target(table: pd.DataFrame) -> Target:
    """Halfway on a log scale between the untrained network's cost and the best run's final cost:
    every good setting gets there; a run stalled at a saturated or chance-level cost does not."""
    initial, best = table.initial_cost.median(), table.final_cost.min()
    value = math.sqrt(initial * best)
    return Target(COST, value, f"default: halfway on a log scale from the untrained network's training cost "
                               f"({initial:.3g}) to the best run's final one ({best:.3g})")


def default_accuracy_target(table: pd.DataFrame) -> Target:
    """ACCURACY_PROGRESS of the way from chance (the untrained network) to the best run's final
    validation accuracy: far above chance, so guessing never reaches it."""
    chance, best = chance_accuracy(table), table[f"final_{ACCURACY}"].max()
    value = chance + ACCURACY_PROGRESS * (best - chance)
    return Target(ACCURACY, value, f"default: {ACCURACY_PROGRESS:.0%} of the way from chance (the untrained network, "
                                   f"{chance:.3g}) to the best run's final validation accuracy ({best:.3g})")


def targets(runs: pd.DataFrame, table: pd.DataFrame, cost: float | None = None, accuracy: float | None = None) -> list[Target]:
    """The training-cost target and, where tracked, the validation-accuracy target: given here (the
    command line), else stated by the study, else the default rule."""
    chosen = []
    for metric, given, key, default in ((COST, cost, "target_cost", default_cost_target),
                                        (ACCURACY, accuracy, "target_accuracy", default_accuracy_target)):
        if metric == ACCURACY and f"final_{ACCURACY}" not in table:
            continue
        check_target(given, metric)
        if given is not None:
            chosen.append(Target(metric, given, "given on the command line"))
        elif (value := stated(runs, key)) is not None:
            chosen.append(Target(metric, value, f"stated by the study (study.{key})"))
        else:
            chosen.append(default(table))
    return chosen


def measured(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """run_id, updates, value: every point where `metric` was measured, with its update count:
    the end of each epoch and, where the run has them, the scheduled evaluations
    (`names.by_update(metric)`), which fall between epochs."""
    epochs = per_epoch(runs, [metric, names.STEPS])[["run_id", names.STEPS, metric]]
    epochs = epochs.rename(columns={names.STEPS: "updates", metric: "value"}).dropna(subset=["value"])  # not measured
    scheduled = runs[runs.metric == names.by_update(metric)][["run_id", "step", "value"]].rename(columns={"step": "updates"})
    points = pd.concat([scheduled, epochs], ignore_index=True).astype({"updates": "int64"})
    return points.drop_duplicates(["run_id", "updates"]).sort_values(["run_id", "updates"], ignore_index=True)


MEASURES = {"updates": "update", names.EXAMPLES: "example", "epochs": "epoch", names.TRAIN_TIME: "second"}  # column: unit


def to_target(runs: pd.DataFrame, target: Target) -> pd.DataFrame:
    """One row per run: `updates`, the first measured update count at or past the target (NaN if
    never, or if the run diverged), `before`, the measured one before it (the run reached the
    target in between), `last_update`, its last measured one (where an unreached run is
    censored), `first`, whether it met the target at its first measured point after the
    untrained network (then `updates` is only an upper bound), and the `examples`, `epochs` and
    seconds of training (`train_time`, at the run's mean time per update) those updates amount to,
    each with its amount per update (`per_update_<column>`, to convert `before` and `last_update`)."""
    points = measured(runs, target.metric)
    rows = []
    for run_id, run in points.groupby("run_id"):
        met = target.met(run.value)
        counts = run.updates.to_numpy()
        updates = float(counts[met.argmax()]) if met.any() else np.nan
        before = float(counts[met.argmax() - 1]) if met.any() and met.argmax() > 0 else np.nan
        rows.append((run_id, updates, before, float(run.updates.max()), updates == run.updates[run.updates > 0].min()))
    reached = pd.DataFrame(rows, columns=["run_id", "updates", "before", "last_update", "first"])
    table = runs[RUN].drop_duplicates("run_id").merge(reached, on="run_id")
    table.loc[table.diverged, ["updates", "before"]] = np.nan
    rates = per_epoch(runs, [names.STEPS, names.EXAMPLES, names.TRAIN_TIME])
    last = rates.loc[rates.groupby("run_id").epoch.idxmax()].set_index("run_id").reindex(table.run_id)
    table["per_update_updates"] = 1.0
    table[f"per_update_{names.EXAMPLES}"] = (last[names.EXAMPLES] / last[names.STEPS]).to_numpy()
    table["per_update_epochs"] = (last.epoch / last[names.STEPS]).to_numpy()
    table[f"per_update_{names.TRAIN_TIME}"] = (last[names.TRAIN_TIME] / last[names.STEPS]).to_numpy()
    for column in MEASURES:
        table[column] = table.updates * table[f"per_update_{column}"]
    return table


def at_best(reached: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Per batch size with a best η: `updates`, the geometric mean over the seeds of its best
    configuration when every seed reached the target (else NaN), how many `reached` of `seeds`,
    `censored`, the last update measured by a seed that did not reach it, and `bound`, whether a
    seed met it at its first measured point (so `updates` is only an upper bound)."""
    rows = []
    for b in best[best.lr.notna()].itertuples():
        seeds = reached[(reached.batch_size == b.batch_size) & (reached.lr == b.lr)]
        hit = seeds.updates.notna()
        rows.append((b.batch_size, b.lr, geometric_mean(seeds.updates) if hit.all() else np.nan, int(hit.sum()),
                     len(seeds), seeds.last_update[~hit].min() if (~hit).any() else np.nan, bool(seeds["first"].any())))
    return pd.DataFrame(rows, columns=["batch_size", "lr", "updates", "reached", "seeds", "censored", "bound"])


def critical_batch(sizes, updates) -> tuple[float, float] | None:
    """(B_crit, S_min) of S(m) = S_min (1 + B_crit/m), the updates S to a target at batch size m
    (McCandlish et al. 2018), fitted as a line in 1/m weighted by 1/S (relative errors,
    as S spans decades); None with fewer than 3 batch sizes or when the fit puts no bend between the
    smallest and the largest m measured (S not falling with m, or falling as 1/m all the way)."""
    sizes, updates = np.asarray(sizes, dtype=float), np.asarray(updates, dtype=float)
    keep = np.isfinite(sizes) & np.isfinite(updates)
    if keep.sum() < 3:
        return None
    slope, intercept = np.polyfit(1 / sizes[keep], updates[keep], 1, w=1 / updates[keep])
    if slope <= 0 or intercept <= 0 or not sizes[keep].min() < slope / intercept < sizes[keep].max():
        return None
    return float(slope / intercept), float(intercept)


def on_seeds(rows: pd.DataFrame, seeds: list) -> pd.DataFrame:
    """The rows of the (resampled) `seeds`, a seed drawn twice appearing twice; seeds without a
    row are skipped."""
    by_seed = rows.set_index("seed")
    return by_seed.loc[[seed for seed in seeds if seed in by_seed.index]]


def reach_estimate(reached: pd.DataFrame, batch_size, lr, column: str = "updates") -> Estimate:
    """`column` (one of MEASURES) to the target for the seeds of (batch_size, lr): the geometric
    mean of the first measurements at the target (NaN if a seed never got there), its interval
    from the resamples of the measurements before the target to those at it, so it spans the
    seeds and the resolution of their schedules."""
    seeds = reached[(reached.batch_size == batch_size) & (reached.lr == lr)]
    seeds = seeds.assign(previous=seeds.before * seeds[f"per_update_{column}"])
    return over_seeds(sorted(seeds.seed.unique()), lambda picked: geometric_mean(on_seeds(seeds, picked)[column]),
                      lower=lambda picked: geometric_mean(on_seeds(seeds, picked).previous))


def best_lr_estimate(table: pd.DataFrame, reached: list[pd.DataFrame], batch_size) -> Estimate:
    """The best η of `batch_size` (best_lr's rule) and its interval over seeds: the best η of each
    resample of its seeds (the rule takes each η's slowest seed, so a resample's best η is that of
    the seeds it holds)."""
    runs = table[table.batch_size == batch_size]
    chosen: dict[frozenset, float] = {}

    def best(picked: list) -> float:
        key = frozenset(picked)
        if key not in chosen:
            chosen[key] = float(best_lr(runs[runs.seed.isin(key)], reached).lr.iloc[0])
        return chosen[key]
    return over_seeds(sorted(runs.seed.unique()), best)


def critical_batch_estimate(reached: pd.DataFrame, best: pd.DataFrame, n: int | None) -> Estimate | None:
    """B_crit (critical_batch) fitted to the updates of the batch sizes whose every seed reached
    the target after its first measurement, at their best η, and its interval over seeds and
    resolution: on each resample of the seeds, the fits to every way the updates may lie between
    the measurement before the target and the one at it that moves B_crit most (the smaller
    batch sizes at one end, the larger at the other, split anywhere), the lowest and highest of
    them; a resample gives no value where one of those fits finds no bend. None when the fit on
    all seeds, at the measurements at the target, finds none."""
    rows = at_best(reached, best)
    fitted = rows[~rows.bound & rows.updates.notna()]
    groups = [(batch_size_value(b, n), reached[(reached.batch_size == b) & (reached.lr == lr)])
              for b, lr in zip(fitted.batch_size, fitted.lr)]
    sizes = [size for size, _ in groups]
    spans: dict[tuple, np.ndarray] = {}

    def fit(updates: list) -> float:
        found = critical_batch(sizes, updates)
        return found[0] if found else np.nan

    def span(picked: list) -> np.ndarray:
        key = tuple(sorted(picked))
        if key not in spans:
            at, before = ([geometric_mean(on_seeds(seeds, picked)[column]) for _, seeds in groups]
                          for column in ("updates", "before"))
            spans[key] = np.array([fit(first[:split] + rest[split:]) for split in range(len(groups) + 1)
                                   for first, rest in ((at, before), (before, at))])
        return spans[key]
    seeds = sorted({seed for _, group in groups for seed in group.seed})
    if not seeds or np.isnan(fit([geometric_mean(seeds.updates) for _, seeds in groups])):
        return None
    return over_seeds(seeds, lambda picked: fit([geometric_mean(on_seeds(group, picked).updates) for _, group in groups]),
                      lower=lambda picked: span(picked).min(), upper=lambda picked: span(picked).max())


@dataclass
class Arm:
    """A batch size at its best η on the way to a target: `measures` {MEASURES column: Estimate}
    where every seed reached it, else `budget` {column: at least this much}, the last measurement
    of a seed that did not reach it (every run's last, where no η learned on every seed: the
    target was not reached within the budget)."""
    batch_size: object
    lr: float  # NaN where no η learned on every seed
    seeds: int
    reached: int
    bound: bool  # a seed met the target at its first measurement: the measures are upper bounds
    measures: dict
    budget: dict

    @property
    def censored(self) -> bool:
        return bool(self.budget)

    def low(self, column: str) -> float:
        return self.budget[column] if self.censored else self.measures[column].low

    def high(self, column: str) -> float:
        return math.inf if self.censored else self.measures[column].high


def arms(reached: pd.DataFrame, best: pd.DataFrame) -> list[Arm]:
    """Every batch size of `best` (best_lr) on the way to the target of `reached` (to_target)."""
    found = []
    for b in best.itertuples():
        runs = reached[reached.batch_size == b.batch_size]
        seeds = runs[runs.lr == b.lr] if pd.notna(b.lr) else runs.iloc[0:0]
        hit = seeds.updates.notna()
        if len(seeds) and hit.all():
            measures = {column: reach_estimate(reached, b.batch_size, b.lr, column) for column in MEASURES}
            found.append(Arm(b.batch_size, b.lr, len(seeds), len(seeds), bool(seeds["first"].any()), measures, {}))
            continue
        missed = seeds[~hit] if len(seeds) else runs[~runs.diverged]
        budget = {column: float((missed.last_update * missed[f"per_update_{column}"]).min() if len(seeds) else
                                (missed.last_update * missed[f"per_update_{column}"]).max()) for column in MEASURES}
        found.append(Arm(b.batch_size, b.lr, len(seeds), int(hit.sum()), False, {}, budget))
    return found


def noise_scale_on_the_way(runs: pd.DataFrame, reached: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """The gradient noise scale B_simple (metric noise_scale) of each run of a best configuration
    that reached the target, on its way there: one row per estimate up to the update where the
    run reaches it, with the run's configuration, seed, `updates` to the target, the estimate's
    `step` and `value`, and `fraction`, step over updates (McCandlish et al. 2018 predict
    B_crit ≈ B_noise, which B_simple estimates when the Hessian is close to a multiple of the
    identity; gradient_noise.py reads it per batch size and stage). Empty when B_simple was not
    measured."""
    chosen = reached[reached.updates.notna()].merge(best.loc[best.lr.notna(), CONFIG], on=CONFIG)
    estimates = runs[runs.metric == names.NOISE_SCALE][["run_id", "step", "value"]]
    window = estimates.merge(chosen[["run_id", *CONFIG, "seed", "updates"]], on="run_id")
    window = window[window.step <= window.updates]
    return window.assign(fraction=window.step / window.updates).reset_index(drop=True)


@dataclass
class Study:
    """What every figure and the report compute from a sweep, computed once."""
    table: pd.DataFrame  # finals: one row per run
    targets: list[Target]
    reached: dict  # Target -> to_target table
    best: pd.DataFrame  # best_lr, chosen by the updates to every target
    noise_scales: dict  # Target -> noise_scale_on_the_way (empty where B_simple was not measured)
    n: int | None = None  # the full batch's size (full_batch_size)

    @cached_property
    def arms(self) -> dict:
        """Target -> every batch size at its best η on the way to it (arms)."""
        return {target: arms(runs, self.best) for target, runs in self.reached.items()}

    @cached_property
    def best_lrs(self) -> dict:
        """Batch size -> its best η with the interval over seeds (best_lr_estimate), where one learned."""
        return {b: best_lr_estimate(self.table, list(self.reached.values()), b) for b in self.best.batch_size[self.best.lr.notna()]}

    @cached_property
    def critical_batches(self) -> dict:
        """Target -> B_crit with its interval (critical_batch_estimate), or None."""
        return {target: critical_batch_estimate(runs, self.best, self.n) for target, runs in self.reached.items()}


def study(runs: pd.DataFrame, target_cost: float | None = None, target_accuracy: float | None = None) -> Study:
    """The sweep's outcomes, targets (given here, else stated by the study, else the defaults),
    updates to each and best η per batch size."""
    table = finals(runs)
    goals = targets(runs, table, target_cost, target_accuracy)
    reached = {target: to_target(runs, target) for target in goals}
    best = best_lr(table, list(reached.values()))
    noise = {target: noise_scale_on_the_way(runs, reached[target], best) for target in goals}
    return Study(table, goals, reached, best, noise, full_batch_size(runs))


def full_batch_size(runs: pd.DataFrame) -> int | None:
    """n, the number of training inputs: the examples per update of a full-batch run (None if
    there is no full-batch run that made an update)."""
    full = runs[(runs.batch_size == "full") & runs.metric.isin([names.EXAMPLES, names.STEPS])]
    if set(full.metric) != {names.EXAMPLES, names.STEPS}:
        return None
    curves = per_epoch(full, [names.EXAMPLES, names.STEPS])
    stepped = curves[curves.steps > 0]
    return int(round(stepped.examples.iloc[0] / stepped.steps.iloc[0])) if len(stepped) else None


def train_sizes(runs: pd.DataFrame) -> pd.Series:
    """n, the number of training inputs of each run (indexed by run_id): the examples it saw in
    its first epoch; a run that diverged in its first epoch, which recorded none, gets the size of
    the runs with its data settings (the `data.*` params)."""
    curves = per_epoch(runs, [names.EXAMPLES])
    info = runs.drop_duplicates("run_id").set_index("run_id")
    info["train_size"] = curves[curves.epoch == 1].set_index("run_id")[names.EXAMPLES]
    data = [column for column in info if column.startswith("data.")]
    if data:
        info["train_size"] = info.groupby(data, dropna=False).train_size.transform("max")
    return info.train_size.round().astype("Int64")


def batch_size_value(batch_size, n: int | None) -> float:
    """The batch size as a number: n for `full` (NaN when n is unknown)."""
    if batch_size == "full":
        return float(n) if n else np.nan
    return float(batch_size)


def check_target(value: float | None, metric: str) -> None:
    if value is not None and names.is_accuracy(metric) and not 0 < value <= 1:
        raise AnalysisError(f"target accuracy: {value} must be a fraction in (0, 1]")
    if value is not None and not names.is_accuracy(metric) and not value > 0:
        raise AnalysisError(f"target cost: {value} must be a number > 0")
