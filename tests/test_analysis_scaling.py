"""The scaling rules against hand-built sweeps whose answer is known: linear scaling (η ∝ m) that
holds, or breaks at a known m; equal noise scale (g = η·n/m) that holds across training set sizes,
or parts at a known g; changes judged against what the test set can resolve; and no section where
a sweep lacks the variation a rule needs."""

from types import SimpleNamespace

import numpy as np
import pytest
from test_analysis_loader import log_sweep
from test_analysis_summary import run_rows, sweep

from analysis import figures, scaling
from analysis.__main__ import main
from analysis.report import rules


def trained(m, lr, test, seeds=(0, 1), n=100, diverged_seed=None, test_size=None):
    """A configuration's runs whose validation and test accuracy end at `test` (a value, or one
    per seed); the seed `diverged_seed` diverges; `test_size`: the test inputs the loader read
    from their dataset input (None: none logged). Seeds share initial weights across
    configurations, as in the harness."""
    tests = test if isinstance(test, (list, tuple)) else [test] * len(seeds)
    return [[{**row, "test_size": test_size} for row in run_rows(m, lr, seed, [1.0, 0.1, 0.05], [0.1, 0.5, value],
                                                                 test_accuracies=[0.1, 0.5, value], train_size=n,
                                                                 diverged=seed == diverged_seed)]
            for seed, value in zip(seeds, tests)]


def line(tests: dict, ratio=0.1, n=100, **kwargs):
    """The runs of a line of constant η/m = `ratio`: {m: test accuracy}."""
    return [rows for m, test in tests.items() for rows in trained(m, ratio * m, test, n=n, **kwargs)]


def judged(*runs):
    return rules(sweep(*runs))


def test_linear_scaling_that_holds_exactly_holds_to_the_largest_m():
    found = scaling.lines(judged(*line({10: 0.95, 20: 0.95, 40: 0.95, 80: 0.95})).linear).iloc[0]
    assert (found.holds_to, found.largest_m) == (80, 80) and np.isnan(found.breaks)


def test_linear_scaling_that_breaks_is_reported_at_the_first_m_where_it_breaks():
    found = scaling.lines(judged(*line({10: 0.95, 20: 0.95, 40: 0.945, 80: 0.90, 160: 0.95})).linear).iloc[0]
    assert (found.holds_to, found.breaks, found.break_lr) == (40, 80, 8.0)
    assert found.break_change == pytest.approx(-0.05)


def test_linear_scaling_answer_names_where_it_holds_and_where_it_breaks_with_test_accuracy():
    (text,) = judged(*line({10: 0.95, 20: 0.95, 40: 0.945, 80: 0.90})).answer()
    assert ("from the best η at m = 10 by validation accuracy (η = 1, η/m = 0.1; final test accuracy 95.0%)" in text
            and "keeps the final test accuracy (no seed falls further than the tolerance below its own at m = 10: "
                "1.0 points, fixed, as the runs record no test set size) up to m = 40 and breaks at m = 80 "
                "(η = 8: final test accuracy 90.0%, −5.0 points; per seed −5.0 and −5.0)" in text)


@pytest.mark.parametrize("accuracy, test_size, expected", [
    (0.93, 10_000, 0.0108),  # 3·sqrt(2·0.93·0.07/10,000): MNIST's test set near 93%
    (0.976, 250, 0.0411),  # 3·sqrt(2·0.976·0.024/250): the digits' test set near 97.6%
    (0.99, 10_000, 0.01),  # 3·sqrt(2·0.99·0.01/10,000) = 0.0042, raised to one point
    (0.976, np.nan, 0.01),  # no test set size recorded: one point
])
def test_tolerance_is_three_standard_errors_of_a_difference_and_at_least_one_point(accuracy, test_size, expected):
    assert scaling.tolerance(SimpleNamespace(test=accuracy, test_size=test_size)) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("test_size, breaks", [(250, None), (10_000, 20)])
def test_a_fall_breaks_linear_scaling_only_beyond_what_the_test_set_resolves(test_size, breaks):
    # a 2-point fall at 97.6%: within 4.1 points on 250 test inputs, beyond 1 point on 10,000
    found = scaling.lines(judged(*line({10: 0.976, 20: 0.956, 40: 0.956}, test_size=test_size)).linear).iloc[0]
    assert (None if np.isnan(found.breaks) else found.breaks) == breaks


def test_a_rise_never_breaks_linear_scaling():
    found = scaling.lines(judged(*line({10: 0.90, 20: 0.95, 40: 0.99})).linear).iloc[0]
    assert (found.holds_to, found.largest_m) == (40, 40) and np.isnan(found.breaks)


def test_linear_scaling_answer_states_the_tolerance_of_the_test_set():
    (text,) = judged(*line({10: 0.976, 20: 0.976, 40: 0.976}, test_size=250)).answer()
    assert ("no seed falls further than the tolerance below its own at m = 10: 4.1 points: 3 standard errors of a "
            "difference of two test accuracies near 97.6% on 250 test inputs, and at least 1 point)") in text


def test_linear_scaling_figure_draws_each_line_at_its_own_tolerance():
    points = judged(*line({10: 0.976, 20: 0.976, 40: 0.976}, test_size=250),
                    *line({10: 0.93, 20: 0.93, 40: 0.93}, ratio=0.2, test_size=10_000)).linear
    drawn = figures.linear_scaling(points, 100, 2)
    levels = sorted(segment[0][1] for artist in drawn.axes[1].collections if artist.get_gid() == "tolerance"
                    for segment in artist.get_segments())
    assert levels == pytest.approx([-4.11, -1.08], abs=0.01)


@pytest.mark.parametrize("moved, holds", [((0.855, 0.945), True), ((0.95, 0.85), False)])
def test_configurations_are_compared_seed_by_seed(moved, holds):
    # seed 0 ends near 85% and seed 1 near 95% at m = 10 (their initial weights differ): a point is
    # equal when each seed stays within a point of its own, not when the mean does
    points = judged(*line({10: (0.85, 0.95), 20: moved, 40: moved})).linear
    assert points.set_index("m").holds[20] == holds


def test_a_diverged_seed_breaks_linear_scaling_where_it_diverges():
    runs = line({10: 0.95, 20: 0.95}) + line({40: 0.95}, diverged_seed=1)
    found = scaling.lines(judged(*runs).linear).iloc[0]
    assert (found.holds_to, found.breaks, found.break_diverged) == (20, 40, True)


def test_a_line_whose_smallest_m_did_not_learn_is_not_judged():
    stalled = trained(10, 1.0, 0.11)  # at chance, as the line's other points
    assert judged(*line({20: 0.95}), *stalled, *line({20: 0.95, 40: 0.95}, ratio=0.05)).linear.empty


def test_lines_of_fewer_than_three_batch_sizes_are_not_judged():
    assert judged(*line({10: 0.95, 20: 0.90})).linear.empty


def sizes(tests: dict, m=10):
    """Runs at batch size `m` on training sets of n = 100 and 200 inputs: {g: (test accuracy at
    n = 100, at n = 200)}, η = g·m/n."""
    return [rows for g, pair in tests.items() for n, test in zip((100, 200), pair)
            for rows in trained(m, g * m / n, test, n=n)]


def test_equal_noise_scale_that_holds_is_equal_in_every_comparison():
    found = judged(*sizes({10: (0.9, 0.9), 20: (0.95, 0.95)}))
    assert found.noise.holds.tolist() == [True, True]
    assert ("reach equal final test accuracy (on every seed, within the tolerance of each other: 1.0 points, fixed, as "
            "the runs record no test set size) in 2 of the 2 comparisons") in found.answer()[0]


def test_equal_noise_scale_is_reported_parting_at_the_g_where_the_sizes_part():
    found = judged(*sizes({10: (0.9, 0.9), 20: (0.95, 0.95), 40: (0.85, 0.95)}))
    assert found.noise.set_index("noise_scale").holds.to_dict() == {10: True, 20: True, 40: False}
    (text,) = found.answer()
    assert "in 2 of the 3 comparisons, at g = 10–20 (the largest: g = 20 at m = 10)" in text
    assert "at most 10.0 (g = 40, m = 10: 85.0% on n = 100 at η = 4 against 95.0% on n = 200 at η = 2)" in text


def test_equal_noise_scale_parts_where_the_smaller_training_set_is_ahead():
    found = judged(*sizes({10: (0.95, 0.90)}))
    assert found.noise.holds.tolist() == [False]


def test_noise_scale_is_compared_at_the_same_m_only():
    # equal g on both sizes, but never at the same m: nothing to compare
    runs = trained(10, 1.0, 0.9, n=100) + trained(20, 4.0, 0.9, n=200)
    assert judged(*runs).noise.empty


def report_figures(tmp_path, runs) -> list[str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_sweep(uri, sweep(*runs))
    main(["report", "--experiment", "study", "--tracking-uri", uri, "--out", str(tmp_path / "out")])
    return sorted(p.stem for p in (tmp_path / "out" / "figures").glob("*.png"))


def test_report_draws_both_rules_for_a_sweep_along_their_lines_answering_the_study_first(tmp_path):
    runs = line({10: 0.95, 20: 0.95, 40: 0.95}) + line({10: 0.95, 20: 0.95, 40: 0.95}, n=200, ratio=0.05)
    drawn = report_figures(tmp_path, runs)
    assert {"linear_scaling", "noise_scale"} <= set(drawn)
    answer = (tmp_path / "out" / "report.md").read_text().split("## Answer\n", 1)[1]
    assert answer.index("at its best η") < answer.index("**Linear scaling**") < answer.index("**Equal noise scale**")


def test_report_draws_no_scaling_section_for_a_sweep_off_the_rules_lines(tmp_path):
    # m and η both vary, on one training set, but no η/m is shared by three batch sizes
    runs = [rows for m in (10, 20, 40) for lr in (1.0, 3.0) for rows in trained(m, lr * m / 10 + 0.5, 0.95)]
    drawn = report_figures(tmp_path, runs)
    assert not {"linear_scaling", "noise_scale"} & set(drawn)
