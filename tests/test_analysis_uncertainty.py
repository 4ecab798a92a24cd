"""Intervals over seeds: the bootstrap against resamples counted by hand, the digits an interval
allows, and the seeds a too-wide interval would need."""

import math

import numpy as np
import pytest

from analysis.uncertainty import Estimate, geometric_mean, over_seeds, rounded


def mean_of(values: dict):
    return lambda seeds: geometric_mean([values[s] for s in seeds])


def test_two_seeds_give_the_two_single_seed_values_as_the_interval():
    found = over_seeds([0, 1], mean_of({0: 1.1, 1: 9.4}))
    assert (found.low, found.high, found.seeds) == (1.1, 9.4, 2)
    assert found.value == pytest.approx(math.sqrt(1.1 * 9.4))


def test_the_interval_narrows_as_seeds_are_added_around_the_same_values():
    few = over_seeds(range(3), mean_of({0: 1.0, 1: 2.0, 2: 4.0}))
    many = over_seeds(range(12), mean_of({s: [1.0, 2.0, 4.0][s % 3] for s in range(12)}))
    assert few.high / few.low > many.high / many.low > 1


@pytest.mark.parametrize("seeds", [2, 3])
def test_two_or_three_seeds_are_called_a_range_spanning_every_single_seed_value(seeds):
    values = {0: 1.0, 1: 2.0, 2: 4.0}
    found = over_seeds(range(seeds), mean_of(values))
    assert (found.low, found.high) == (1.0, [2.0, 4.0][seeds - 2])
    assert found.interval_text().endswith(f"; range of {seeds} seeds") and "95%" not in found.text()


def test_four_seeds_give_a_95_percent_interval_inside_their_range():
    found = over_seeds(range(4), mean_of({0: 1.0, 1: 2.0, 2: 4.0, 3: 8.0}))
    assert 1.0 < found.low < found.high < 8.0  # a resample of one seed repeated weighs 1/256 < 2.5%
    assert found.interval_text().endswith("; 95% over 4 seeds")


def test_one_seed_has_no_interval_and_says_so():
    found = over_seeds([0], lambda seeds: 3.4567)
    assert not found.has_interval
    assert found.text() == "3.5 (1 seed: no interval)"


def test_the_lower_statistic_sets_the_low_end():
    # the measurements before the target (100, 200) and at it (150, 260)
    found = over_seeds([0, 1], mean_of({0: 150.0, 1: 260.0}), lower=mean_of({0: 100.0, 1: 200.0}))
    assert (found.low, found.high) == (100.0, 260.0)


def test_resamples_without_a_value_make_the_interval_undetermined():
    found = over_seeds([0, 1, 2], lambda seeds: np.nan if seeds.count(2) > 1 else 5.0)
    assert 0 < found.missing < 1
    assert not found.answers()
    assert found.text().startswith("not determined")


@pytest.mark.parametrize("value, low, high, expected", [
    (3.45, 1.1, 9.4, ("3", "1", "9")),           # width 8: units
    (4213, 3890, 4610, ("4,200", "3,900", "4,600")),  # width 720: hundreds
    (260, 130, 260, ("260", "130", "260")),      # width 130: a leading 1 keeps a second digit
])
def test_values_keep_only_the_digits_their_interval_allows(value, low, high, expected):
    assert rounded(value, low, high) == expected


def test_a_too_wide_interval_gives_no_value_and_the_seeds_that_would_narrow_it():
    found = Estimate(3.2, 1.1, 9.4, seeds=2)
    # log-width shrinks as 1/sqrt(seeds): 2 (ln 8.5 / ln 3)^2 = 7.6 -> 8 seeds
    assert found.seeds_needed() == 8
    assert "not determined" in found.text() and "about 8 seeds" in found.text() and "3.2" not in found.text()


def test_geometric_mean_of_one_value_is_that_value_exactly():
    for value in (0.07634511644877787, 1e-7, 7.77e5):  # exp(log(x)) misses each by a rounding error
        assert geometric_mean([value]) == value
