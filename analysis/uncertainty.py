"""How sure a number computed from seeds is: its interval over seeds, and the digits it allows.

A study's headline numbers (a critical batch size, a best η, the updates to a target) are
statistics of its seeds. `over_seeds` recomputes a statistic on bootstrap resamples of the seeds
(Efron & Tibshirani 1993, ch. 13): with few seeds on every distinct resample, weighted by how
often it is drawn, else on RESAMPLES random ones from a fixed generator, and takes the central
LEVEL of the values, its ends being values some resample gave (the lower and higher quantiles).
With two or three seeds a resample of one seed repeated is drawn more often than the tails
allow, so the interval spans at least the single-seed values: it is their range, which covers
the middle of the seeds' distribution only half the time with two seeds and three times in four
with three, and it is called a range, not a 95% interval. From four seeds on it is the bootstrap's
95% interval, and it narrows as seeds are added. One seed gives no interval, and its number is
said to be one seed's.

An interval answers only when its ends are at most WIDE apart as a ratio (the quantities here are
compared as ratios) and every resample gave a value (a fit can find no bend). When it does not,
`seeds_needed` estimates how many seeds would narrow it to WIDE, assuming its width on a log scale
shrinks as 1/√seeds, as the standard error of a mean does.

`Estimate.text` prints the value and interval with the digits the interval allows: rounded to
the decimal place of the leading digit of the interval's width (one further when that digit is 1
or 2), each end keeping at least one significant digit.

    updates = {0: 1200.0, 1: 1500.0, 2: 1300.0}
    found = over_seeds(list(updates), lambda seeds: geometric_mean([updates[s] for s in seeds]))
    found.text()  # '1,300 (1,200–1,500; range of 3 seeds)', and with 4 or more '…; 95% over 4 seeds'
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from itertools import combinations_with_replacement
from typing import Callable, Sequence

import numpy as np

LEVEL = 0.95  # the central share of the resampled values an interval spans
WIDE = 3.0  # an interval whose ends are further apart than this ratio does not answer
ENUMERATED = 5000  # at most this many distinct resamples are enumerated; beyond, RESAMPLES random ones
RESAMPLES = 2000


def geometric_mean(values) -> float:
    """The geometric mean, kept within the values' range (exp(mean(log)) can miss a single value by
    a rounding error); 0 if a value is 0."""
    values = np.asarray(values, dtype=float)
    if not len(values) or np.isnan(values).any():
        return np.nan
    if (values == 0).any():
        return 0.0
    return float(np.clip(np.exp(np.log(values).mean()), values.min(), values.max()))


@dataclass(frozen=True)
class Estimate:
    """A statistic of `seeds` seeds: `value` on all of them, `low`–`high` its interval over seeds
    (with one seed NaN, or its own span: over_seeds), `missing` the share of resamples that gave
    no value."""
    value: float
    low: float
    high: float
    seeds: int
    missing: float = 0.0

    @property
    def has_interval(self) -> bool:
        return self.seeds > 1 and np.isfinite(self.low) and np.isfinite(self.high)

    @property
    def ratio(self) -> float:
        """high / low: how far apart the interval's ends are (inf when low is 0 or a resample gave no value)."""
        if self.missing > 0 or not self.has_interval:
            return math.inf
        return self.high / self.low if self.low > 0 else math.inf

    def answers(self, wide: float = WIDE) -> bool:
        """Whether the interval is narrow enough to give the number: ends at most `wide` apart."""
        return self.has_interval and self.ratio <= wide

    def seeds_needed(self, wide: float = WIDE) -> int | None:
        """Seeds that would narrow the interval to `wide`, its log-width shrinking as 1/√seeds;
        None when that cannot be estimated (one seed, an end at 0, resamples without a value)."""
        if not self.has_interval or not np.isfinite(self.ratio):
            return None
        return max(self.seeds, math.ceil(self.seeds * (math.log(self.ratio) / math.log(wide)) ** 2))

    def interval_text(self, fmt: Callable[[float], str] | None = None) -> str:
        """'1,200–1,500; 95% over 4 seeds', '…; range of 3 seeds' (too few seeds for a 95%
        interval: is_range), or '1 seed: no interval'."""
        if self.seeds <= 1:
            return "1 seed: no interval"
        low, high = (fmt(self.low), fmt(self.high)) if fmt else rounded(self.value, self.low, self.high)[1:]
        if low == high:
            return f"the resamples of {self.seeds} seeds agree"
        return f"{low}–{high}; {interval_name(self.seeds)}"

    def text(self, fmt: Callable[[float], str] | None = None, wide: float = WIDE) -> str:
        """The value with its interval, in the digits the interval allows (`fmt` formats all three
        instead, e.g. for values on a grid); where the interval is too wide, no value: the
        interval and the seeds that would narrow it."""
        if self.seeds <= 1:
            return f"{fmt(self.value) if fmt else significant(self.value)} ({self.interval_text(fmt)})"
        if not self.answers(wide):
            return f"not determined ({self.too_wide_text(fmt, wide)})"
        value = fmt(self.value) if fmt else rounded(self.value, self.low, self.high)[0]
        return f"{value} ({self.interval_text(fmt)})"

    def brief(self, fmt: Callable[[float], str] | None = None, wide: float = WIDE) -> str:
        """`text` short enough for a figure: '3 (1–9, 2 seeds)', 'not determined (1–9, 2 seeds)'."""
        if self.seeds <= 1:
            return f"{fmt(self.value) if fmt else significant(self.value)} (1 seed)"
        if self.missing > 0:
            return f"not determined ({self.seeds} seeds)"
        value, low, high = (fmt(self.value), fmt(self.low), fmt(self.high)) if fmt else rounded(self.value, self.low, self.high)
        return f"{value if self.answers(wide) else 'not determined'} ({low}–{high}, {self.seeds} seeds)"

    def too_wide_text(self, fmt: Callable[[float], str] | None = None, wide: float = WIDE) -> str:
        """Why the interval does not answer, and how many seeds would."""
        if self.missing > 0:
            return (f"{self.missing:.0%} of the resamples of its {self.seeds} seeds give no value; "
                    "more seeds are needed")
        needed = self.seeds_needed(wide)
        more = (f"about {needed} seeds would narrow it to a factor of {wide:g}, its log-width shrinking as 1/√seeds"
                if needed else "more seeds are needed")
        return f"{self.interval_text(fmt)}, ends more than a factor of {wide:g} apart; {more}"


def over_seeds(seeds: Sequence, statistic: Callable[[list], float], lower: Callable[[list], float] | None = None,
               upper: Callable[[list], float] | None = None) -> Estimate:
    """`statistic` (a function of a list of seeds, which may repeat a seed; NaN where it has no
    value) on `seeds` and its LEVEL bootstrap interval over them. `lower` and `upper`: statistics
    whose resamples give the interval's ends instead, where each seed's value is itself only
    known within a span (e.g. the updates at the last measurement before a target and at the
    first one past it); with one seed, they give the ends, that seed's own span."""
    seeds = list(seeds)
    value = float(statistic(seeds))
    lower, upper = lower or statistic, upper or statistic
    if len(seeds) <= 1:
        spanned = lower is not statistic or upper is not statistic
        return Estimate(value, float(lower(seeds)) if spanned else np.nan, float(upper(seeds)) if spanned else np.nan,
                        len(seeds))
    samples, weights = resamples(len(seeds))
    picked = [[seeds[i] for i in sample] for sample in samples]
    highs = np.array([upper(s) for s in picked], dtype=float)
    lows = np.array([lower(s) for s in picked], dtype=float)
    missing = float(weights[np.isnan(highs) | np.isnan(lows)].sum() / weights.sum())
    tail = (1 - LEVEL) / 2
    low = quantile(lows, weights, tail, from_top=False)
    high = quantile(highs, weights, tail, from_top=True)
    return Estimate(value, low, high, len(seeds), missing)


def is_range(seeds: int) -> bool:
    """Whether the interval over this many seeds is their range rather than a LEVEL interval: a
    resample of one seed repeated (weight seeds**-seeds) is more likely than a tail allows."""
    return seeds ** -seeds > (1 - LEVEL) / 2


def interval_name(seeds: int) -> str:
    """What an interval over this many seeds is: 'range of 3 seeds', '95% over 5 seeds', '1 seed: no interval'."""
    if seeds <= 1:
        return "1 seed: no interval"
    return f"range of {seeds} seeds" if is_range(seeds) else f"{LEVEL:.0%} over {seeds} seeds"


def resamples(n: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """(resamples of n seeds as index tuples, their weights): every distinct multiset, weighted by
    the multinomial count of its orderings, when there are at most ENUMERATED; else RESAMPLES
    random ones (fixed generator, so a report is reproducible), weight 1 each."""
    if math.comb(2 * n - 1, n) <= ENUMERATED:
        samples = list(combinations_with_replacement(range(n), n))
        weights = [math.factorial(n) / math.prod(math.factorial(k) for k in Counter(s).values()) for s in samples]
        return samples, np.array(weights)
    drawn = np.random.default_rng(0).integers(n, size=(RESAMPLES, n))
    return [tuple(row) for row in drawn], np.ones(RESAMPLES)


def quantile(values: np.ndarray, weights: np.ndarray, tail: float, from_top: bool) -> float:
    """The value below which (or, `from_top`, above which) at most `tail` of the weight lies: an
    end of the interval that is itself a resampled value. NaN values (no value) are left out."""
    keep = ~np.isnan(values)
    values, weights = values[keep], weights[keep]
    if not len(values):
        return np.nan
    order = np.argsort(-values if from_top else values, kind="stable")
    share = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][np.argmax(share > tail)])


def decimal_place(value: float) -> int:
    """The decimal place of a number's leading digit: 0 for 3.4, 2 for 340, −1 for 0.34."""
    return math.floor(math.log10(abs(value))) if value else 0


def at_place(value: float, place: int) -> str:
    """`value` rounded to 10**place, with thousands separators: at_place(1234, 2) == '1,200'."""
    if not np.isfinite(value):
        return str(value)
    return f"{round(value, -place):,.0f}" if place >= 0 else f"{value:,.{-place}f}"


def significant(value: float, digits: int = 2) -> str:
    """`value` to `digits` significant digits, without an exponent: 0.61, 5.1, 180, 1,300."""
    return at_place(value, decimal_place(value) - digits + 1) if np.isfinite(value) else str(value)


def span(values, fmt: Callable[[float], str]) -> str:
    """'a' or 'a–b': the range of `values` (NaN left out) as `fmt` writes it, once where both ends
    read alike."""
    low, high = fmt(np.nanmin(values)), fmt(np.nanmax(values))
    return low if low == high else f"{low}–{high}"


def rounded(value: float, low: float, high: float) -> tuple[str, str, str]:
    """(value, low, high) rounded to the decimal place of the leading digit of high − low (the next
    place when that digit is 1 or 2); each keeping at least one significant digit. An interval of
    width 0 leaves two significant digits."""
    if not high > low:
        return significant(value), significant(low), significant(high)
    place = decimal_place(high - low)
    if f"{high - low:e}"[0] in "12":
        place -= 1  # a width of 1x or 2x keeps a second digit (the Particle Data Group's rounding rule)
    keep = lambda v: at_place(v, min(place, decimal_place(v)))  # noqa: E731
    return keep(value), keep(low), keep(high)
