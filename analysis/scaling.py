"""Two rules for scaling the learning rate with the mini-batch size, judged on a sweep's final test
accuracy at equal epochs, the comparison both papers make:

- Linear scaling (Goyal et al. 2017): multiply m by k, multiply η by k. Along a line of constant
  η/m, on one training set, the test accuracy stays where it was at the line's smallest m.
- Equal noise scale (Smith & Le 2018): runs with equal g = η·n/m, n the number of training
  inputs, reach equal test accuracy. At one n, equal g is equal η/m, which linear scaling
  already judges; what g adds is n, so it is judged across training sets of different sizes at
  the same m and the same g (η ∝ 1/n).

A seed gives the same initial weights to every configuration (whatever m, η or n), and two seeds'
networks can end several points apart for good, so configurations are compared seed by seed,
against a reference configuration (the line's smallest m; the largest n), within the `tolerance`
its test set can resolve at the reference's test accuracy. Linear scaling promises to keep the
accuracy, so a point breaks it only where some seed falls more than the tolerance below its own
at the reference: a rise is not a break. Equal noise scale is judged both ways, as Smith & Le
claim equal accuracy, not accuracy kept: a smaller training set ahead at the same g contradicts
the claim as much as one behind. A diverged seed breaks a rule wherever it occurs. A comparison
counts only where a configuration in it learned on every seed (summary.finals): runs that all
stalled at chance agree, and say nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import summary
from .summary import ACCURACY, LEARNED_OUTCOME, TEST_ACCURACY

STANDARD_ERRORS = 3  # a rule is judged at many points and seeds: two standard errors would flag noise somewhere
MIN_EQUAL = 0.01  # one point of test accuracy: no smaller change is called one, however large the test set
SLACK = 1e-9  # accuracies are exact fractions; their differences are not
MIN_LINE = 3  # batch sizes a line of constant η/m needs before it can show where the rule breaks


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
    final validation accuracy, `seeds`, whether every seed `learned`, and how many `diverged`."""
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
    return pd.DataFrame(rows)


def difference_error(accuracy: float, test_size: float) -> float:
    """The standard error of the difference between two test accuracies near `accuracy`, each on
    `test_size` inputs, taken as independent: for networks that agree on most inputs the true one
    is smaller, so a tolerance built on it errs towards calling a change equal."""
    return math.sqrt(2 * accuracy * (1 - accuracy) / test_size)


def tolerance(reference) -> float:
    """The largest change from `reference` (a row of `configurations`) that its test set cannot
    resolve: STANDARD_ERRORS standard errors of a difference at its mean test accuracy, and never
    below MIN_EQUAL; MIN_EQUAL where the runs do not record their test set's size."""
    if pd.isna(reference.test_size):
        return MIN_EQUAL
    return max(MIN_EQUAL, STANDARD_ERRORS * difference_error(reference.test, reference.test_size))


def seed_values(configs) -> np.ndarray:
    """The final test accuracies of `configs` on every seed they share: a row per seed."""
    seeds = set.intersection(*(set(c.by_seed) for c in configs))
    return np.array([[c.by_seed[seed] for c in configs] for seed in sorted(seeds)], dtype=float).reshape(-1, len(configs))


def equal(configs, within: float) -> bool:
    """Whether `configs` (rows of `configurations`) reach equal test accuracy: on every seed they
    share, `within` of each other, none diverged."""
    values = seed_values(configs)
    return bool(len(values)) and bool(np.isfinite(values).all()) and bool((np.ptp(values, axis=1) <= within + SLACK).all())


def kept(reference, config, within: float) -> bool:
    """Whether `config` keeps the test accuracy of `reference`: on every seed they share, no more
    than `within` below it, none diverged."""
    values = seed_values([reference, config])
    return (bool(len(values)) and bool(np.isfinite(values).all())
            and bool((values[:, 1] - values[:, 0] >= -within - SLACK).all()))


def seed_changes(config, reference) -> dict:
    """seed: the change in final test accuracy from `reference` on that seed."""
    return {seed: value - reference.by_seed[seed] for seed, value in config.by_seed.items() if seed in reference.by_seed}


def linear_scaling(configs: pd.DataFrame) -> pd.DataFrame:
    """The points of every line of constant η/m on the largest training set that crosses MIN_LINE
    or more batch sizes and whose smallest m learned on every seed: the configuration's columns,
    `change`, its mean test accuracy minus that at the line's smallest m, `changes`, the same per
    seed, the line's `tolerance`, and `holds`, whether the point keeps the accuracy of the
    smallest m. Sorted by η/m, then m."""
    largest = configs[configs.train_size == configs.train_size.max()]
    points = []
    for _, line in largest.groupby("ratio"):
        line = line.sort_values("m")
        reference = line.iloc[0]
        if len(line) < MIN_LINE or not reference.learned:
            continue
        within = tolerance(reference)
        points.append(line.assign(change=line.test - reference.test,
                                  changes=[seed_changes(point, reference) for point in line.itertuples()],
                                  tolerance=within, holds=[kept(reference, point, within) for point in line.itertuples()]))
    return pd.concat(points, ignore_index=True) if points else pd.DataFrame()


def held(line: pd.DataFrame) -> tuple:
    """(the largest m up to which every point of `line`, sorted by m, holds; the first m where it
    breaks, or None)."""
    broken = line[~line.holds]
    if broken.empty:
        return line.m.iloc[-1], None
    first = broken.m.iloc[0]
    return line.m[line.m < first].iloc[-1], first  # the line's smallest m always holds: it is the reference


def lines(points: pd.DataFrame) -> pd.DataFrame:
    """Per line of constant η/m (from `linear_scaling`): its smallest m with that point's lr, test
    and validation accuracy, test_size and tolerance, the largest m it `holds_to` (every m up to
    it holds), the m where it first `breaks` (NaN if never) with that point's lr, test accuracy,
    change and `break_changes` per seed, and `held_fall`, the largest fall of a seed on the
    points that hold (0 if none falls)."""
    rows = []
    for ratio, line in points.groupby("ratio"):
        reference = line.iloc[0]
        holds_to, breaks = held(line)
        row = {"ratio": ratio, "m": reference.m, "lr": reference.lr, "test": reference.test,
               "validation": reference.validation, "test_size": reference.test_size, "tolerance": reference.tolerance,
               "largest_m": line.m.iloc[-1], "holds_to": holds_to,
               "held_fall": max([0, *(-v for changes in line[line.holds].changes for v in changes.values())]),
               "breaks": np.nan, "break_lr": np.nan, "break_test": np.nan, "break_change": np.nan,
               "break_changes": {}, "break_diverged": False}
        if breaks is not None:
            point = line[line.m == breaks].iloc[0]
            row.update(breaks=breaks, break_lr=point.lr, break_test=point.test, break_change=point.change,
                       break_changes=point.changes, break_diverged=point.diverged > 0)
        rows.append(row)
    return pd.DataFrame(rows)


def noise_scale(configs: pd.DataFrame) -> pd.DataFrame:
    """Per (batch size, g) reached on two or more training set sizes, one of whose configurations
    learned on every seed: `sizes` compared, the `lowest` and `highest` configuration by mean test
    accuracy (rows of `configurations`), their `gap`, the `reference` on the largest n and its
    `tolerance`, whether every configuration `learned` on every seed, and `holds`, whether they
    reach equal test accuracy. Sorted by g, then m."""
    rows = []
    for (g, m), group in configs.groupby(["noise_scale", "m"]):
        if group.train_size.nunique() < 2 or not group.learned.any():
            continue
        group = group.sort_values("train_size")
        lowest, highest, reference = group.loc[group.test.idxmin()], group.loc[group.test.idxmax()], group.iloc[-1]
        within = tolerance(reference)
        rows.append({"noise_scale": g, "m": m, "sizes": sorted(group.train_size), "lowest": lowest, "highest": highest,
                     "gap": highest.test - lowest.test, "reference": reference, "tolerance": within,
                     "learned": bool(group.learned.all()), "holds": equal(list(group.itertuples()), within)})
    return pd.DataFrame(rows)


def size_changes(configs: pd.DataFrame, comparisons: pd.DataFrame) -> pd.DataFrame:
    """For each configuration in a comparison of `noise_scale` on a training set smaller than the
    largest there: its columns, `change` in mean test accuracy from the configuration of the same
    m and g on the largest set, `changes` per seed, the comparison's `tolerance`, and `holds`,
    whether the two are equal."""
    rows = []
    for c in comparisons.itertuples():
        group = configs[(configs.noise_scale == c.noise_scale) & (configs.m == c.m)].sort_values("train_size")
        for config in group.iloc[:-1].itertuples(index=False):
            rows.append({**config._asdict(), "change": config.test - c.reference.test,
                         "changes": seed_changes(config, c.reference), "tolerance": c.tolerance,
                         "holds": equal([config, c.reference], c.tolerance)})
    return pd.DataFrame(rows)


def best_noise_scale(configs: pd.DataFrame) -> pd.DataFrame:
    """Per training set size: the configuration with the highest validation accuracy, among those
    whose every seed learned (Smith & Le expect the same best g on every n)."""
    learned = configs[configs.learned & configs.validation.notna()]
    return learned.loc[learned.groupby("train_size").validation.idxmax()].reset_index(drop=True)

