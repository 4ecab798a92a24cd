"""Two rules for scaling the learning rate with the mini-batch size, judged on a sweep's final test
accuracy at equal epochs, the comparison both papers make:

- Linear scaling (Goyal et al. 2017): multiply m by k, multiply η by k. Along a line of constant
  η/m, on one training set, the test accuracy stays where it was at the line's smallest m.
- Equal noise scale (Smith & Le 2018): runs with equal g = η·n/m, n the number of training
  inputs, reach equal test accuracy. At one n, equal g is equal η/m, which linear scaling
  already judges; what g adds is n, so it is judged across training sets of different sizes at
  the same m and the same g (η ∝ 1/n).

A seed gives the same initial weights to every configuration (whatever m, η or n), and two seeds'
networks can end several points apart for good, so a configuration is compared with its reference
(the line's smallest m; the largest n) seed by seed: each seed's change from its own reference.
Two sources of noise decide a verdict. The test set: a change smaller than the `tolerance` it can
resolve at the reference's test accuracy is no change. The seeds: their changes scatter, and their
mean is known only to within `seed_interval`, a Student-t interval over seeds. A rule holds at a
point only when the whole seed interval lies within the tolerance, breaks only when it lies
entirely beyond it, and otherwise the seeds cannot tell (`seeds_needed` says how many might); one
seed gives no interval, so no verdict. Linear scaling promises to keep the accuracy, so only a fall
counts (a rise is no break); equal noise scale is judged both ways, as Smith & Le claim equal
accuracy: a smaller training set ahead at the same g contradicts the claim as much as one behind.
A diverged seed breaks a rule wherever it occurs.

A comparison says something only between trained networks: runs that all stalled at chance agree,
and a reference far below what the sweep reaches has a wide tolerance and little to keep. So a line
is judged only where its reference learned on every seed (summary.finals) and is `trained`: within
the tolerance of the best configuration on its training set; a comparison across n only where one
of its configurations is.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from . import summary
from .summary import ACCURACY, LEARNED_OUTCOME, TEST_ACCURACY

STANDARD_ERRORS = 3  # a rule is judged at many points and seeds: two standard errors would flag noise somewhere
MIN_EQUAL = 0.01  # one point of test accuracy: no smaller change is called one, however large the test set
SLACK = 1e-9  # accuracies are exact fractions; their differences are not
MIN_LINE = 3  # batch sizes a line of constant η/m needs before it can show where the rule breaks
LEVEL = 0.95  # confidence of the interval over seeds
MAX_SEEDS = 100  # seeds_needed looks no further
HOLDS, BREAKS, UNDECIDED, NOT_JUDGED = "holds", "breaks", "cannot tell", "not judged"


def key(value: float) -> float:
    """η/m and g as group keys: equal in exact arithmetic, equal here despite rounding."""
    return float(f"{value:.10g}")


def test_sizes(runs: pd.DataFrame) -> pd.Series:
    """The number of test inputs of each run (indexed by run_id; loader's `test_size`), NaN where
    the runs do not record it."""
    info = runs.drop_duplicates("run_id").set_index("run_id")
    return info.test_size.astype(float) if "test_size" in info else pd.Series(np.nan, index=info.index)


def configurations(table: pd.DataFrame, sizes: pd.Series, tests: pd.Series) -> pd.DataFrame:
    """Per configuration (train_size n, batch_size, lr), from summary.finals' `table`, the runs'
    `sizes` (summary.train_sizes) and their number of test inputs `tests` (test_sizes): m as a
    number, η/m as `ratio`, `noise_scale` g = η·n/m, the final test accuracy's mean over seeds
    `test` and `by_seed` (seed: final test accuracy, NaN where it diverged), `test_size`, the mean
    final validation accuracy, `seeds`, whether every seed `learned`, how many `diverged`, and
    whether it is `trained` (within the tolerance of the best configuration on its n)."""
    runs = table.assign(train_size=table.run_id.map(sizes), test_size=table.run_id.map(tests))
    rows = []
    for (n, batch_size, lr), group in runs.groupby(["train_size", "batch_size", "lr"]):
        m = summary.batch_size_value(batch_size, n)
        test = group[f"final_{TEST_ACCURACY}"]
        rows.append({"train_size": int(n), "batch_size": batch_size, "m": m, "lr": lr, "ratio": key(lr / m),
                     "noise_scale": key(lr * n / m), "test": test.mean(), "by_seed": dict(zip(group.seed, test)),
                     "test_size": group.test_size.max(),
                     "validation": group[f"final_{ACCURACY}"].mean(), "seeds": len(group),
                     "learned": bool((group.outcome == LEARNED_OUTCOME).all()), "diverged": int(group.diverged.sum())})
    configs = pd.DataFrame(rows)
    return configs.assign(trained=trained(configs)) if len(configs) else configs


def difference_error(accuracy: float, test_size: float) -> float:
    """The standard error of the difference between two test accuracies near `accuracy`, each on
    `test_size` inputs, taken as independent: for networks that agree on most inputs the true one
    is smaller, so a tolerance built on it errs towards calling a change equal."""
    return math.sqrt(2 * accuracy * (1 - accuracy) / test_size)


def tolerance(reference) -> float:
    """The largest change from `reference` (a row of `configurations`) that its test set cannot
    resolve (tolerance_at its mean test accuracy)."""
    return tolerance_at(reference.test, reference.test_size)


def tolerance_at(accuracy: float, test_size: float) -> float:
    """STANDARD_ERRORS standard errors of a difference of two test accuracies near `accuracy` on
    `test_size` inputs, and never below MIN_EQUAL; MIN_EQUAL where the runs do not record their
    test set's size."""
    if pd.isna(test_size):
        return MIN_EQUAL
    return max(MIN_EQUAL, STANDARD_ERRORS * difference_error(accuracy, test_size))


def best_tests(configs: pd.DataFrame) -> pd.Series:
    """Per training set size: the highest mean test accuracy of a configuration whose every seed
    learned (NaN where none did)."""
    return configs.test.where(configs.learned).groupby(configs.train_size).max()


def trained(configs: pd.DataFrame) -> pd.Series:
    """Whether each configuration ends within the tolerance (taken at the best's accuracy) of the
    best configuration on its training set (best_tests): one further below is under-trained, and
    what it keeps or matches is not what the rules are about."""
    best = configs.train_size.map(best_tests(configs))
    margins = [tolerance_at(b, size) for b, size in zip(best, configs.test_size)]
    return (best - configs.test <= np.array(margins) + SLACK) & configs.learned


def seed_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t interval at `level` of the mean of `values`, one per seed;
    low and high are NaN with fewer than two values, which give no interval."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if len(values) else np.nan
    if len(values) < 2:
        return mean, np.nan, np.nan
    half = stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def seeds_needed(spread: float, margin: float, level: float = LEVEL) -> float:
    """The fewest seeds whose interval (seed_interval) would be narrower on each side than
    `margin`, if the seeds' changes kept their standard deviation `spread` and their mean: the
    half-width t·spread/sqrt(k) shrinks as 1/sqrt(k). inf beyond MAX_SEEDS, or where the mean sits
    on the tolerance (`margin` 0)."""
    for k in range(2, MAX_SEEDS + 1):
        if stats.t.ppf((1 + level) / 2, k - 1) * spread / math.sqrt(k) < margin:
            return float(k)
    return math.inf


def judge(changes: dict, within: float, two_sided: bool) -> dict:
    """The verdict on a point from its seeds' `changes` ({seed: change from its own reference})
    against the tolerance `within`: `change` (their mean), the seed interval `low`–`high`,
    `verdict` (HOLDS: the interval within the tolerance, below it only for a one-sided rule;
    BREAKS: entirely beyond it, or a seed diverged; else UNDECIDED, always so with one seed),
    `seeds_needed` to decide an undecided point with two or more seeds (NaN otherwise), and
    `within`, whether the mean change alone lies within the tolerance: with one seed, a
    single-seed observation, not a verdict."""
    values = np.array([changes[seed] for seed in sorted(changes)], dtype=float)
    mean, low, high = seed_interval(values)
    found = {"change": mean, "low": low, "high": high, "seeds_needed": np.nan,
             "within": bool(-within - SLACK <= mean and (mean <= within + SLACK or not two_sided))}
    if not np.isfinite(values).all():
        return {**found, "verdict": BREAKS}
    if len(values) < 2:
        return {**found, "verdict": UNDECIDED}
    inside = low >= -within - SLACK and (high <= within + SLACK or not two_sided)
    beyond = high < -within - SLACK or (two_sided and low > within + SLACK)
    if inside or beyond:
        return {**found, "verdict": HOLDS if inside else BREAKS}
    margin = abs(abs(mean) - within) if two_sided else abs(mean + within)
    return {**found, "verdict": UNDECIDED, "seeds_needed": seeds_needed(values.std(ddof=1), margin)}


def seed_changes(config, reference) -> dict:
    """seed: the change in final test accuracy from `reference` on that seed."""
    return {seed: value - reference.by_seed[seed] for seed, value in config.by_seed.items() if seed in reference.by_seed}


def linear_scaling(configs: pd.DataFrame) -> pd.DataFrame:
    """The points of every line of constant η/m on the largest training set that crosses MIN_LINE
    or more batch sizes and whose smallest m learned on every seed: the configuration's columns,
    `changes` per seed from the line's smallest m, the line's `tolerance`, `judged` (its smallest
    m is trained), and the verdict's columns (judge; one-sided, as a rise keeps the accuracy),
    `verdict` NOT_JUDGED on a line that is not judged. Sorted by η/m, then m."""
    largest = configs[configs.train_size == configs.train_size.max()]
    points = []
    for _, line in largest.groupby("ratio"):
        line = line.sort_values("m")
        reference = line.iloc[0]
        if len(line) < MIN_LINE or not reference.learned:
            continue
        within = tolerance(reference)
        changes = [seed_changes(point, reference) for point in line.itertuples()]
        verdicts = pd.DataFrame([judge(c, within, two_sided=False) for c in changes], index=line.index)
        if not reference.trained:
            verdicts = verdicts.assign(verdict=NOT_JUDGED, seeds_needed=np.nan)
        points.append(line.assign(changes=changes, tolerance=within, judged=bool(reference.trained)).join(verdicts))
    return pd.concat(points, ignore_index=True) if points else pd.DataFrame()


def lines(points: pd.DataFrame) -> pd.DataFrame:
    """Per line of constant η/m (from `linear_scaling`): its smallest m with that point's lr, test
    and validation accuracy, test_size, tolerance, `seeds` and whether it is `judged`; the largest
    m it `holds_to` (every m up to it holds), the m where the rule `holds_at`, `undecided_at` and
    `breaks_at`, and `seeds_needed` for the undecided (the most any of them needs); the m where it
    first `breaks` (NaN if never) with that point's lr, test accuracy, mean change, seed
    interval, changes per seed and whether a seed diverged there."""
    rows = []
    for ratio, line in points.groupby("ratio"):
        reference, rest = line.iloc[0], line.iloc[1:]
        verdicts = rest.verdict.tolist() + [None]
        holds_to = ([reference.m] + rest.m.tolist())[verdicts.index(next(v for v in verdicts if v != HOLDS))]
        undecided = rest[rest.verdict == UNDECIDED]
        row = {"ratio": ratio, "m": reference.m, "lr": reference.lr, "test": reference.test,
               "validation": reference.validation, "test_size": reference.test_size, "tolerance": reference.tolerance,
               "seeds": int(line.seeds.min()), "judged": reference.judged, "largest_m": line.m.iloc[-1],
               "holds_to": holds_to, "holds_at": rest.m[rest.verdict == HOLDS].tolist(),
               "undecided_at": undecided.m.tolist(), "breaks_at": rest.m[rest.verdict == BREAKS].tolist(),
               "seeds_needed": undecided.seeds_needed.max() if len(undecided) else np.nan,
               "breaks": np.nan, "break_lr": np.nan, "break_test": np.nan, "break_change": np.nan,
               "break_low": np.nan, "break_high": np.nan, "break_changes": {}, "break_diverged": False}
        broken = rest[rest.verdict == BREAKS]
        if len(broken):
            point = broken.iloc[0]
            row.update(breaks=point.m, break_lr=point.lr, break_test=point.test, break_change=point.change,
                       break_low=point.low, break_high=point.high, break_changes=point.changes,
                       break_diverged=point.diverged > 0)
        rows.append(row)
    return pd.DataFrame(rows)


def size_changes(configs: pd.DataFrame, comparisons: pd.DataFrame) -> pd.DataFrame:
    """For each configuration in a comparison of `noise_scale` on a training set smaller than the
    largest there: its columns, `changes` per seed from the configuration of the same m and g on
    the largest set, the comparison's `tolerance`, and the verdict's columns (judge; two-sided, as
    Smith & Le claim equal accuracy), `verdict` NOT_JUDGED in a comparison that is not judged."""
    rows = []
    for c in comparisons.itertuples():
        group = configs[(configs.noise_scale == c.noise_scale) & (configs.m == c.m)].sort_values("train_size")
        for config in group.iloc[:-1].itertuples(index=False):
            changes = seed_changes(config, c.reference)
            found = judge(changes, c.tolerance, two_sided=True)
            rows.append({**config._asdict(), "changes": changes, "tolerance": c.tolerance, **found}
                        | ({} if c.judged else {"verdict": NOT_JUDGED, "seeds_needed": np.nan}))
    return pd.DataFrame(rows)


def overall(verdicts: pd.Series) -> str:
    """One verdict for several comparisons: NOT_JUDGED if none is judged, BREAKS if any breaks,
    HOLDS if all hold, else UNDECIDED."""
    if (verdicts == NOT_JUDGED).all():
        return NOT_JUDGED
    return BREAKS if (verdicts == BREAKS).any() else HOLDS if (verdicts == HOLDS).all() else UNDECIDED


def noise_scale(configs: pd.DataFrame) -> pd.DataFrame:
    """Per (batch size, g) reached on two or more training set sizes, one of whose configurations
    learned on every seed: `sizes` compared, the `lowest` and `highest` configuration by mean test
    accuracy (rows of `configurations`), their `gap`, the `reference` on the largest n and its
    `tolerance`, whether every configuration `learned` on every seed, the fewest `seeds`, whether
    it is `judged` (one of its configurations is trained), and the `verdict` over its sizes
    (overall of size_changes, NOT_JUDGED where it is not judged) with the `seeds_needed` to decide
    it. Sorted by g, then m."""
    rows = []
    for (g, m), group in configs.groupby(["noise_scale", "m"]):
        if group.train_size.nunique() < 2 or not group.learned.any():
            continue
        group = group.sort_values("train_size")
        lowest, highest, reference = group.loc[group.test.idxmin()], group.loc[group.test.idxmax()], group.iloc[-1]
        rows.append({"noise_scale": g, "m": m, "sizes": sorted(group.train_size), "lowest": lowest, "highest": highest,
                     "gap": highest.test - lowest.test, "reference": reference, "tolerance": tolerance(reference),
                     "learned": bool(group.learned.all()), "seeds": int(group.seeds.min()),
                     "judged": bool(group.trained.any())})
    comparisons = pd.DataFrame(rows)
    if comparisons.empty:
        return comparisons
    by_comparison = size_changes(configs, comparisons).groupby(["noise_scale", "m"])
    decided = by_comparison.verdict.agg(overall)
    needed = by_comparison.seeds_needed.max().where(decided == UNDECIDED)
    where = pd.MultiIndex.from_frame(comparisons[["noise_scale", "m"]])
    return comparisons.assign(verdict=decided.reindex(where).to_numpy(), seeds_needed=needed.reindex(where).to_numpy())


def best_noise_scale(configs: pd.DataFrame) -> pd.DataFrame:
    """Per training set size: the configuration with the highest validation accuracy, among those
    whose every seed learned (Smith & Le expect the same best g on every n)."""
    learned = configs[configs.learned & configs.validation.notna()]
    return learned.loc[learned.groupby("train_size").validation.idxmax()].reset_index(drop=True)
