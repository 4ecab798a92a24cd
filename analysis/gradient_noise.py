"""The gradient noise scale B_simple = tr(Σ)/|G|² (McCandlish et al. 2018, measured with
`measure.noise_scale_every`) of a sweep's best configurations, per batch size and over training.

B_simple is not one number: it changes as the network trains, and a sweep's batch sizes, each at
its own best η, need not see the same one. So it is read per batch size and per stage of the way to
a target, never pooled over them. The estimates are those of each run of a best configuration up
to the update where it reaches the target (summary.noise_scale_on_the_way), placed at the fraction
of those updates. One probe batch makes an estimate noisy, so a run gives the median of its
estimates in each third of the way (STAGES); a batch size gives the geometric mean of its seeds'
medians (B_simple is a batch size, compared as a ratio, like an update count) with its interval
over seeds from the bootstrap that gives B_crit its interval (uncertainty.over_seeds), so the two
are read alike. McCandlish et al. compare the critical
batch size B_crit for a target with B_simple where training reaches it: the last third.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import summary, uncertainty
from .summary import batch_order

STAGES = ("first third", "middle third", "last third")
BINS = 12  # points along each run's way to the target in the figure: a median of a few estimates each


def stage(fraction) -> np.ndarray:
    """The index in STAGES of each `fraction` of the updates to the target (0 to 1; 1 is the last
    third)."""
    return np.minimum((np.asarray(fraction, dtype=float) * len(STAGES)).astype(int), len(STAGES) - 1)


def per_run(estimates: pd.DataFrame, parts: int = len(STAGES)) -> pd.DataFrame:
    """Per run (summary.noise_scale_on_the_way's `estimates`) and per part of its way to the
    target (`parts` equal parts, 0 first): its batch_size, seed, `part` and `value`, the median of
    its estimates there."""
    part = np.minimum((estimates.fraction.to_numpy() * parts).astype(int), parts - 1)
    return (estimates.assign(part=part).groupby(["batch_size", "seed", "run_id", "part"], as_index=False)
            .value.median())


def per_batch_size(estimates: pd.DataFrame) -> pd.DataFrame:
    """Per batch size (smallest first) and stage (STAGES): `b_simple`, the geometric mean over its
    seeds of their median estimates there (per_run), `low` and `high`, its interval over seeds
    (uncertainty.over_seeds; NaN with one seed), and `seeds`."""
    rows = []
    medians = per_run(estimates)
    for (batch_size, part), group in sorted(medians.groupby(["batch_size", "part"]),
                                            key=lambda item: (batch_order(item[0][0]), item[0][1])):
        values = group.value.to_numpy()
        found = uncertainty.over_seeds(range(len(values)), lambda picked: summary.geometric_mean(values[picked]))
        rows.append({"batch_size": batch_size, "stage": STAGES[part], "b_simple": found.value, "low": found.low,
                     "high": found.high, "seeds": found.seeds})
    return pd.DataFrame(rows, columns=["batch_size", "stage", "b_simple", "low", "high", "seeds"])


def along(estimates: pd.DataFrame, bins: int = BINS) -> pd.DataFrame:
    """Per batch size and part of the way to the target (`bins` equal parts): `fraction`, the
    part's middle, `b_simple`, the geometric mean over seeds of their median estimates there, and
    the seeds' `lowest` and `highest` median (their spread, as every band in the report)."""
    medians = per_run(estimates, bins)
    found = medians.groupby(["batch_size", "part"]).value.agg(
        b_simple=summary.geometric_mean, lowest="min", highest="max").reset_index()
    return found.assign(fraction=(found.part + 0.5) / bins).drop(columns="part")
