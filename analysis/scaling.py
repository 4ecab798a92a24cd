"""Two rules for scaling the learning rate with the mini-batch size, judged on a sweep's final test
accuracy at equal epochs, the comparison both papers make:

- Linear scaling (Goyal et al. 2017): multiply m by k, multiply η by k. Along a line of constant
  η/m, on one training set, the test accuracy stays where it was at the line's smallest m.
- Equal noise scale (Smith & Le 2018): runs with equal g = η·n/m, n the number of training
  inputs, reach equal test accuracy. At one n, equal g is equal η/m, which linear scaling
  already judges; what g adds is n, so it is judged across training sets of different sizes at
  the same m and the same g (η ∝ 1/n).

A seed gives the same initial weights to every configuration (whatever m, η or n), and two seeds'
networks can end several points apart for good, so configurations are compared seed by seed: two
or more reach equal test accuracy when, for every seed, their final test accuracies lie within
EQUAL of each other. A diverged seed breaks a rule wherever it occurs. A comparison counts only
where a configuration in it learned on every seed (summary.finals): runs that all stalled at
chance agree, and say nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import summary
from .summary import ACCURACY, LEARNED_OUTCOME, TEST_ACCURACY

# One point of test accuracy: about three standard errors of the difference between two
# accuracies near 93% on 10,000 test inputs.
EQUAL = 0.01
MIN_LINE = 3  # batch sizes a line of constant η/m needs before it can show where the rule breaks


def key(value: float) -> float:
    """η/m and g as group keys: equal in exact arithmetic, equal here despite rounding."""
    return float(f"{value:.10g}")


def configurations(table: pd.DataFrame, sizes: pd.Series) -> pd.DataFrame:
    """Per configuration (train_size n, batch_size, lr), from summary.finals' `table` and the runs'
    `sizes` (summary.train_sizes): m as a number, η/m as `ratio`, `noise_scale` g = η·n/m, the
    final test accuracy's mean over seeds `test` and `by_seed` (seed: final test accuracy, NaN
    where it diverged), the mean final validation accuracy, `seeds`, whether every seed
    `learned`, and how many `diverged`."""
    runs = table.assign(train_size=table.run_id.map(sizes))
    rows = []
    for (n, batch_size, lr), group in runs.groupby(["train_size", "batch_size", "lr"]):
        m = summary.batch_size_value(batch_size, n)
        test = group[f"final_{TEST_ACCURACY}"]
        rows.append({"train_size": int(n), "batch_size": batch_size, "m": m, "lr": lr, "ratio": key(lr / m),
                     "noise_scale": key(lr * n / m), "test": test.mean(), "by_seed": dict(zip(group.seed, test)),
                     "validation": group[f"final_{ACCURACY}"].mean(), "seeds": len(group),
                     "learned": bool((group.outcome == LEARNED_OUTCOME).all()), "diverged": int(group.diverged.sum())})
    return pd.DataFrame(rows)


def equal(*configs) -> bool:
    """Whether `configs` (rows of `configurations`) reach equal test accuracy: on every seed they
    share, within EQUAL of each other, none diverged."""
    seeds = set.intersection(*(set(c.by_seed) for c in configs))
    values = np.array([[c.by_seed[seed] for c in configs] for seed in sorted(seeds)], dtype=float)
    within = np.ptp(values, axis=1) <= EQUAL + 1e-9  # accuracies are exact fractions; their differences are not
    return bool(len(seeds)) and bool(np.isfinite(values).all()) and bool(within.all())


def seed_changes(config, reference) -> dict:
    """seed: the change in final test accuracy from `reference` on that seed."""
    return {seed: value - reference.by_seed[seed] for seed, value in config.by_seed.items() if seed in reference.by_seed}


def linear_scaling(configs: pd.DataFrame) -> pd.DataFrame:
    """The points of every line of constant η/m on the largest training set that crosses MIN_LINE
    or more batch sizes and whose smallest m learned on every seed: the configuration's columns,
    `change`, its mean test accuracy minus that at the line's smallest m, `changes`, the same per
    seed, and `holds`, whether the two are equal. Sorted by η/m, then m."""
    largest = configs[configs.train_size == configs.train_size.max()]
    points = []
    for _, line in largest.groupby("ratio"):
        line = line.sort_values("m")
        reference = line.iloc[0]
        if len(line) < MIN_LINE or not reference.learned:
            continue
        points.append(line.assign(change=line.test - reference.test,
                                  changes=[seed_changes(point, reference) for point in line.itertuples()],
                                  holds=[equal(reference, point) for point in line.itertuples()]))
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
    and validation accuracy, the largest m it `holds_to` (every m up to it holds), the m where it
    first `breaks` (NaN if never) with that point's lr, test accuracy, change and `break_changes`
    per seed, and `held_change`, the largest change of a seed on the points that hold."""
    rows = []
    for ratio, line in points.groupby("ratio"):
        reference = line.iloc[0]
        holds_to, breaks = held(line)
        row = {"ratio": ratio, "m": reference.m, "lr": reference.lr, "test": reference.test,
               "validation": reference.validation, "largest_m": line.m.iloc[-1], "holds_to": holds_to,
               "held_change": max(abs(v) for changes in line[line.holds].changes for v in changes.values()),
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
    accuracy (rows of `configurations`), their `gap`, whether every configuration `learned` on
    every seed, and `holds`, whether they reach equal test accuracy. Sorted by g, then m."""
    rows = []
    for (g, m), group in configs.groupby(["noise_scale", "m"]):
        if group.train_size.nunique() < 2 or not group.learned.any():
            continue
        group = group.sort_values("train_size")
        lowest, highest = group.loc[group.test.idxmin()], group.loc[group.test.idxmax()]
        rows.append({"noise_scale": g, "m": m, "sizes": sorted(group.train_size), "lowest": lowest, "highest": highest,
                     "gap": highest.test - lowest.test, "learned": bool(group.learned.all()),
                     "holds": equal(*group.itertuples())})
    return pd.DataFrame(rows)


def size_changes(configs: pd.DataFrame, comparisons: pd.DataFrame) -> pd.DataFrame:
    """For each configuration in a comparison of `noise_scale` on a training set smaller than the
    largest there: its columns, `change` in mean test accuracy from the configuration of the same
    m and g on the largest set, `changes` per seed, and `holds`, whether the two are equal."""
    rows = []
    for c in comparisons.itertuples():
        group = configs[(configs.noise_scale == c.noise_scale) & (configs.m == c.m)].sort_values("train_size")
        reference = group.iloc[-1]
        for config in group.iloc[:-1].itertuples(index=False):
            rows.append({**config._asdict(), "change": config.test - reference.test,
                         "changes": seed_changes(config, reference), "holds": equal(config, reference)})
    return pd.DataFrame(rows)


def best_noise_scale(configs: pd.DataFrame) -> pd.DataFrame:
    """Per training set size: the configuration with the highest validation accuracy, among those
    whose every seed learned (Smith & Le expect the same best g on every n)."""
    learned = configs[configs.learned & configs.validation.notna()]
    return learned.loc[learned.groupby("train_size").validation.idxmax()].reset_index(drop=True)

