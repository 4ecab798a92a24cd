"""The scaling rules against hand-built sweeps whose answer is known: linear scaling (η ∝ m) that
holds, or breaks at a known m; equal noise scale (g = η·n/m) that holds across training set sizes,
or parts at a known g; changes judged against what the test set can resolve and against the
interval over seeds (holds, breaks, or the seeds cannot tell); no verdict from one seed or from an
under-trained reference; and no section where a sweep lacks the variation a rule needs."""

import math
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
            and "keeps the final test accuracy up to m = 40; breaks at m = 80 (η = 8: final test accuracy 90.0%, "
                "−5.0 points [−5.0, −5.0]; per seed −5.0 and −5.0) (a rule holds where the 95% interval over the 2 seeds "
                "of each seed's change from its own at m = 10 lies above −tolerance, breaks where it lies entirely below "
                "it, and otherwise the seeds cannot tell; tolerance 1.0 points, fixed, as the runs record no test set "
                "size)" in text)


def test_runs_ended_by_a_budget_in_updates_are_not_judged_as_the_rules_are_stated_at_equal_epochs():
    runs = sweep(*line({10: 0.95, 20: 0.95, 40: 0.90})).assign(**{"budget.updates": "4000"})
    found = rules(runs)
    assert found.linear.empty and found.noise.empty and not found.sections()
    assert found.answer() == [
        "Scaling rules: not judged. Linear scaling and equal noise scale are stated at equal epochs, and these runs "
        "trained for 4,000 updates each, so each batch size saw a different number of epochs (the `scaling_rules` "
        "study judges them at equal epochs)."]


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
    # 3 points up at 97%, within the 4.6 points 250 test inputs resolve there: the reference is trained
    found = scaling.lines(judged(*line({10: 0.94, 20: 0.955, 40: 0.97}, test_size=250)).linear).iloc[0]
    assert (found.holds_to, found.largest_m) == (40, 40) and np.isnan(found.breaks)


def test_linear_scaling_answer_states_the_tolerance_of_the_test_set():
    (text,) = judged(*line({10: 0.976, 20: 0.976, 40: 0.976}, test_size=250)).answer()
    assert ("tolerance 4.1 points: 3 standard errors of a difference of two test accuracies near 97.6% on 250 test "
            "inputs, and at least 1 point)") in text


def test_linear_scaling_figure_draws_each_line_at_its_own_tolerance():
    points = judged(*line({10: 0.976, 20: 0.976, 40: 0.976}, test_size=250),
                    *line({10: 0.93, 20: 0.93, 40: 0.93}, ratio=0.2, test_size=10_000)).linear
    drawn = figures.linear_scaling(points, 100, 2)
    levels = sorted(segment[0][1] for artist in drawn.axes[1].collections if artist.get_gid() == "tolerance"
                    for segment in artist.get_segments())
    assert levels == pytest.approx([-4.11, -1.08], abs=0.01)


THREE = (0, 1, 2)  # seeds; t = 4.303 for their 95% interval


@pytest.mark.parametrize("moved, verdict", [((0.853, 0.948, 0.902), "holds"), ((0.948, 0.853, 0.902), "cannot tell")])
def test_configurations_are_compared_seed_by_seed(moved, verdict):
    # seeds end near 85%, 95% and 90% at m = 10 (their initial weights differ): each keeping its own
    # (changes +0.3, −0.2, +0.2 points) holds; the same accuracies on other seeds (+9.8, −9.7, +0.2) cannot tell
    points = judged(*line({10: (0.85, 0.95, 0.90), 20: moved, 40: moved}, seeds=THREE)).linear
    assert points.set_index("m").verdict[20] == verdict


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
    found = judged(*sizes({10: (0.945, 0.945), 20: (0.95, 0.95)}))
    assert found.noise.verdict.tolist() == ["holds", "holds"]
    assert ("reach equal final test accuracy in 2 of the 2 judged comparisons, at g = 10–20 (the largest: g = 20 at "
            "m = 10); they part in 0 (a rule holds where the 95% interval over the 2 seeds of each seed's change from "
            "its own at n = 200 lies within ±tolerance") in found.answer()[0]


def test_equal_noise_scale_is_reported_parting_at_the_g_where_the_sizes_part():
    found = judged(*sizes({10: (0.945, 0.945), 20: (0.95, 0.95), 40: (0.85, 0.95)}))
    assert found.noise.set_index("noise_scale").verdict.to_dict() == {10: "holds", 20: "holds", 40: "breaks"}
    (text,) = found.answer()
    assert "in 2 of the 3 judged comparisons, at g = 10–20 (the largest: g = 20 at m = 10); they part in 1" in text
    assert "at most 10.0 (g = 40, m = 10: 85.0% on n = 100 at η = 4 against 95.0% on n = 200 at η = 2)" in text


def test_equal_noise_scale_parts_where_the_smaller_training_set_is_ahead():
    found = judged(*sizes({10: (0.95, 0.90)}))
    assert found.noise.verdict.tolist() == ["breaks"]


def test_noise_scale_is_compared_at_the_same_m_only():
    # equal g on both sizes, but never at the same m: nothing to compare
    runs = trained(10, 1.0, 0.9, n=100) + trained(20, 4.0, 0.9, n=200)
    assert judged(*runs).noise.empty


def report_figures(tmp_path, runs) -> list[str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_sweep(uri, sweep(*runs))
    main(["report", "--experiment", "study", "--tracking-uri", uri, "--out", str(tmp_path / "out")])
    return sorted(p.stem for p in (tmp_path / "out" / "figures").glob("*.png"))


def test_report_draws_both_rules_for_a_sweep_along_their_lines_answering_the_rules_first(tmp_path):
    runs = line({10: 0.95, 20: 0.95, 40: 0.95}) + line({10: 0.95, 20: 0.95, 40: 0.95}, n=200, ratio=0.05)
    drawn = report_figures(tmp_path, runs)
    assert {"linear_scaling", "noise_scale"} <= set(drawn)
    answer = (tmp_path / "out" / "report.md").read_text().split("## Answer\n", 1)[1]
    assert answer.index("**Linear scaling**") < answer.index("**Equal noise scale**") < answer.index("at its best η")


def test_report_draws_no_scaling_section_for_a_sweep_off_the_rules_lines(tmp_path):
    # m and η both vary, on one training set, but no η/m is shared by three batch sizes
    runs = [rows for m in (10, 20, 40) for lr in (1.0, 3.0) for rows in trained(m, lr * m / 10 + 0.5, 0.95)]
    drawn = report_figures(tmp_path, runs)
    assert not {"linear_scaling", "noise_scale"} & set(drawn)


T_975_2 = 4.302653  # Student's t, 97.5% quantile, two degrees of freedom


def test_seed_interval_is_the_student_t_interval_of_the_mean():
    # 1, 2, 3: mean 2, standard deviation 1, half-width 4.303 / sqrt(3)
    assert scaling.seed_interval([1.0, 2.0, 3.0]) == pytest.approx((2.0, 2 - T_975_2 / math.sqrt(3), 2 + T_975_2 / math.sqrt(3)))


def test_one_value_gives_no_seed_interval():
    mean, low, high = scaling.seed_interval([0.5])
    assert mean == 0.5 and np.isnan(low) and np.isnan(high)


# three seeds' changes of standard deviation 1 point: the interval is the mean ± 2.48 points
@pytest.mark.parametrize("changes, within, two_sided, verdict", [
    ((-0.01, 0.0, 0.01), 0.03, False, "holds"),  # −2.5 to +2.5 points: above −3
    ((-0.01, 0.0, 0.01), 0.02, False, "cannot tell"),  # reaches below −2
    ((-0.11, -0.10, -0.09), 0.03, False, "breaks"),  # −12.5 to −7.5: entirely below −3
    ((0.09, 0.10, 0.11), 0.03, False, "holds"),  # a rise keeps the accuracy
    ((0.09, 0.10, 0.11), 0.03, True, "breaks"),  # but is no equal accuracy
    ((-0.01, 0.0, 0.01), 0.03, True, "holds"),  # within ±3 points
    ((0.02, 0.03, 0.04), 0.03, True, "cannot tell"),  # +0.5 to +5.5 points: across +3
])
def test_a_verdict_holds_breaks_or_cannot_tell_by_where_the_seed_interval_lies(changes, within, two_sided, verdict):
    found = scaling.judge(dict(enumerate(changes)), within, two_sided)
    assert found["verdict"] == verdict


def test_a_diverged_seed_breaks_whatever_the_others_do():
    assert scaling.judge({0: 0.0, 1: 0.0, 2: np.nan}, 0.03, two_sided=False)["verdict"] == "breaks"


def test_one_seed_gives_no_verdict_only_an_observation():
    found = scaling.judge({0: -0.001}, 0.01, two_sided=False)
    assert (found["verdict"], found["within"]) == ("cannot tell", True) and np.isnan(found["seeds_needed"])


def test_seeds_needed_is_where_the_interval_first_fits_the_margin():
    # spread 1 point, margin 1 point: t·1/sqrt(k) is 1.05 points at k = 6 (t = 2.571) and 0.92 at k = 7 (t = 2.447)
    assert scaling.seeds_needed(0.01, 0.01) == 7


def test_seeds_needed_is_unbounded_when_the_mean_sits_on_the_tolerance():
    assert scaling.seeds_needed(0.01, 0.0) == math.inf


def test_one_seed_collapsing_cannot_break_linear_scaling_alone():
    # at m = 20 two seeds keep their accuracy and one falls 20 points: mean −6.7, interval −35 to +22 points
    found = scaling.lines(judged(*line({10: 0.95, 20: (0.95, 0.95, 0.75), 40: 0.95}, seeds=THREE)).linear).iloc[0]
    assert (found.undecided_at, found.holds_at, found.breaks_at) == ([20], [40], [])


def test_linear_scaling_answer_says_where_the_seeds_cannot_tell_and_how_many_might():
    (text,) = judged(*line({10: 0.95, 20: (0.948, 0.95, 0.95), 40: (0.94, 0.95, 0.96)}, seeds=THREE)).answer()
    # m = 40: changes −1, 0, +1 point, interval ±2.48 across −1: 7 seeds (test above) might decide
    assert "keeps the final test accuracy up to m = 20; the seeds cannot tell at m = 40 (about 7 seeds might decide)" in text


def test_a_line_from_an_under_trained_reference_is_not_judged_and_the_answer_says_so():
    # η/m = 0.05 starts at 80%, 15 points below the best configuration (95%) of the sweep
    runs = line({10: 0.95, 20: 0.95, 40: 0.95}) + line({20: 0.80, 40: 0.80, 80: 0.80}, ratio=0.05)
    found = judged(*runs)
    assert scaling.lines(found.linear).set_index("ratio").judged.to_dict() == {0.05: False, 0.1: True}
    assert set(found.linear[found.linear.ratio == 0.05].verdict) == {"not judged"}
    assert ("1 not judged, their smallest m under-trained (more than the tolerance below the best configuration's 95.0%; "
            "η/m = 0.05)") in found.answer()[0]


def test_linear_scaling_from_one_seed_gives_no_verdict():
    found = judged(*line({10: 0.95, 20: 0.95, 40: 0.80}, seeds=(0,)))
    assert set(found.linear.verdict[1:]) == {"cannot tell"}
    (text,) = found.answer()
    assert ("cannot be judged from one seed, which gives no interval. Single-seed observation, not a verdict: within "
            "the tolerance below m = 10") in text and "at m = 20 of 20, 40" in text


def test_equal_noise_scale_from_one_seed_gives_no_verdict():
    runs = [rows for n, test in ((100, 0.95), (200, 0.95)) for rows in trained(10, 10 * 10 / n, test, seeds=(0,), n=n)]
    found = judged(*runs)
    assert found.noise.verdict.tolist() == ["cannot tell"]
    assert "cannot be judged from one seed" in found.answer()[0]


def test_equal_noise_scale_where_the_seed_interval_crosses_the_tolerance_cannot_tell():
    # n = 100 against n = 200, per seed −2, 0 and +2 points: interval ±5 points across ±1
    runs = [*trained(10, 1.0, (0.93, 0.95, 0.97), seeds=THREE, n=100), *trained(10, 0.5, 0.95, seeds=THREE, n=200)]
    assert judged(*runs).noise.verdict.tolist() == ["cannot tell"]


def test_a_comparison_of_under_trained_configurations_is_not_judged():
    # at g = 10 both sizes end 15 points below their best (g = 20): their agreement says nothing
    found = judged(*sizes({10: (0.80, 0.80), 20: (0.95, 0.95)}))
    assert found.noise.set_index("noise_scale").verdict.to_dict() == {10: "not judged", 20: "holds"}


def test_linear_scaling_figure_draws_each_points_seed_interval_as_a_bar():
    # m = 40: changes −1, 0 and +1 point, interval ±4.303/sqrt(3) points around 0
    points = judged(*line({10: 0.95, 20: 0.95, 40: (0.94, 0.95, 0.96)}, seeds=THREE)).linear
    (bars,) = [c for c in figures.linear_scaling(points, 100, 2).axes[1].collections if c.get_gid() == "interval"]
    assert bars.get_segments()[2].ravel() == pytest.approx([40, -T_975_2 / math.sqrt(3), 40, T_975_2 / math.sqrt(3)])
