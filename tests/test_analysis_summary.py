"""The rules of the analysis, each against a small hand-built sweep whose answer is known: which
runs did not learn, which η is best and when it sits at the edge of its grid, which target a
study gets, how many updates a run took to reach it, and the critical batch size."""

import numpy as np
import pandas as pd
import pytest

from analysis import summary

UPDATES_PER_EPOCH = 10


def run_rows(batch_size, lr, seed, costs, accuracies=None, scheduled=None, diverged=False, target_cost=None,
             test_accuracies=None, train_size=100):
    """One run in the loader's layout: per-epoch costs (and validation and test accuracies), 10
    updates per epoch over `train_size` training inputs, and `scheduled` {metric: [(update,
    value), ...]} evaluations between epochs."""
    run = {"run_id": f"{batch_size}-{lr}-{seed}" + (f"-{train_size}" if train_size != 100 else ""), "run_name": "",
           "status": "FINISHED", "diverged": diverged,
           "diverged_epoch": len(costs) if diverged else None, "parent_run_id": "sweep", "lr": lr,
           "batch_size": batch_size, "seed": seed, "epochs": len(costs) - 1}
    if target_cost is not None:
        run["study.target_cost"] = str(target_cost)
    rows = []
    for epoch, cost in enumerate(costs):
        values = {"steps": UPDATES_PER_EPOCH * epoch, "examples": train_size * epoch, "train_time": 0.5 * epoch}
        if cost is not None:  # None: the training split was not evaluated that epoch
            values["train_cost"] = cost
        if accuracies is not None:
            values["validation_accuracy"] = accuracies[epoch]
        if test_accuracies is not None:
            values["test_accuracy"] = test_accuracies[epoch]
        rows += [{**run, "metric": k, "step": epoch, "value": v} for k, v in values.items()]
    for metric, points in (scheduled or {}).items():
        rows += [{**run, "metric": metric, "step": step, "value": v} for step, v in points]
    return rows


def sweep(*runs) -> pd.DataFrame:
    frame = pd.DataFrame([row for run in runs for row in run])
    frame["diverged_epoch"] = frame["diverged_epoch"].astype("Int64")
    return frame


LEARNS = [1.0, 0.1, 0.01]  # training cost per epoch of a run that learns
STALLS = [1.0, 0.5, 0.5]  # one stuck at a saturated cost
ACC_LEARNS, ACC_CHANCE = [0.1, 0.8, 0.95], [0.1, 0.11, 0.12]


def test_default_accuracy_target_is_never_chance_level_when_a_batch_size_never_learns():
    runs = sweep(run_rows(10, 1.0, 0, LEARNS, ACC_LEARNS), run_rows("full", 1.0, 0, STALLS, ACC_CHANCE))
    (cost, accuracy) = summary.study(runs).targets
    # the old rule, "the hardest target every batch size reaches", was the stalled run's 0.12
    assert accuracy.value == pytest.approx(0.1 + 0.9 * (0.95 - 0.1))
    assert accuracy.how.startswith("default")


def test_default_cost_target_is_not_reached_by_a_stalled_run():
    runs = sweep(run_rows(10, 1.0, 0, LEARNS), run_rows("full", 1.0, 0, STALLS))
    cost = summary.study(runs).targets[0]
    assert cost.value == pytest.approx(np.sqrt(1.0 * 0.01))  # halfway, on a log scale, from 1.0 to 0.01
    assert min(STALLS) > cost.value


def test_target_stated_by_the_study_is_used():
    runs = sweep(run_rows(10, 1.0, 0, LEARNS, target_cost=0.2))
    cost = summary.study(runs).targets[0]
    assert (cost.value, cost.how) == (0.2, "stated by the study (study.target_cost)")


def test_stalled_run_is_flagged_did_not_learn_and_never_best():
    # at m = 10, η = 10 ends at cost 0.5 (lower than nothing else here) but at chance accuracy
    runs = sweep(run_rows(10, 1.0, 0, [1.0, 0.6, 0.55], [0.1, 0.5, 0.7]),
                 run_rows(10, 10.0, 0, [1.0, 0.5, 0.5], [0.1, 0.1, 0.11]),
                 run_rows(100, 1.0, 0, LEARNS, ACC_LEARNS))
    found = summary.study(runs, target_cost=0.01)
    outcome = found.table.set_index("run_id").outcome
    assert outcome["10-10.0-0"] == "did not learn"
    assert outcome["10-1.0-0"] == outcome["100-1.0-0"] == "learned"
    assert found.best.set_index("batch_size").lr[10] == 1.0


def test_batch_size_where_no_lr_learned_has_no_best():
    runs = sweep(run_rows(10, 1.0, 0, LEARNS, ACC_LEARNS), run_rows("full", 1.0, 0, STALLS, ACC_CHANCE))
    best = summary.study(runs).best.set_index("batch_size")
    assert np.isnan(best.lr["full"]) and best.lr[10] == 1.0


@pytest.mark.parametrize("fastest, edge", [(0.1, "lowest"), (1.0, ""), (10.0, "highest")])
def test_best_lr_at_the_edge_of_its_grid_is_flagged(fastest, edge):
    runs = sweep(*[run_rows(10, lr, 0, [1.0, 0.05, 0.01] if lr == fastest else [1.0, 0.3, 0.05]) for lr in (0.1, 1.0, 10.0)])
    best = summary.study(runs, target_cost=0.1).best.iloc[0]
    assert (best.lr, best.edge) == (fastest, edge)


@pytest.mark.parametrize("fastest, following", [(0.1, {10: 0.01}), (1.0, {}), (10.0, {10: 100.0})])
def test_the_next_lr_to_try_is_one_grid_step_past_a_best_at_the_edge(fastest, following):
    runs = sweep(*[run_rows(10, lr, 0, [1.0, 0.05, 0.01] if lr == fastest else [1.0, 0.3, 0.05]) for lr in (0.1, 1.0, 10.0)])
    assert summary.beyond_edges(summary.study(runs, target_cost=0.1).best) == pytest.approx(following)


def test_no_lr_is_proposed_where_a_single_lr_was_tried_or_none_learned():
    runs = sweep(run_rows(10, 3.0, 0, LEARNS), run_rows(100, 1.0, 0, STALLS), run_rows(100, 3.0, 0, STALLS))
    assert summary.beyond_edges(summary.study(runs).best) == {}


def test_a_single_lr_is_flagged_as_untuned():
    best = summary.study(sweep(run_rows(10, 3.0, 0, LEARNS))).best.iloc[0]
    assert (best.lr, best.edge) == (3.0, "only")


def test_best_lr_is_judged_by_its_slowest_seed_not_one_lucky_one():
    # η = 10: its seeds reach 0.1 after 10 and 20 updates (geometric mean 14); η = 1: both after 15
    fast_lucky = run_rows(10, 10.0, 0, [1.0, 0.05, 0.01])
    slow = run_rows(10, 10.0, 1, [1.0, 0.5, 0.05], scheduled={"train_cost_by_update": [(15, 0.2)]})
    steady = [run_rows(10, 1.0, seed, [1.0, 0.3, 0.05], scheduled={"train_cost_by_update": [(15, 0.09)]}) for seed in (0, 1)]
    best = summary.study(sweep(fast_lucky, slow, *steady), target_cost=0.1).best.iloc[0]
    assert best.lr == 1.0  # its slowest seed gets there at update 15; η = 10's at update 20


def test_updates_to_target_is_the_first_measured_point_at_or_past_it_not_interpolated():
    runs = sweep(run_rows(10, 1.0, 0, [1.0, 0.5, 0.05, 0.01],
                          scheduled={"train_cost_by_update": [(0, 1.0), (3, 0.8), (12, 0.3), (17, 0.1), (25, 0.06)]}))
    reached = summary.to_target(runs, summary.Target("train_cost", 0.1, "")).iloc[0]
    assert reached.updates == 17  # between epochs 1 (update 10, 0.5) and 2 (update 20, 0.05)
    assert reached.epochs == pytest.approx(1.7) and reached.examples == pytest.approx(170)


def test_run_that_never_reaches_the_target_is_censored_at_its_last_measured_update():
    runs = sweep(run_rows(10, 1.0, 0, [1.0, 0.5, 0.3]), run_rows(10, 1.0, 1, [1.0, 0.5, 0.05]))
    reached = summary.to_target(runs, summary.Target("train_cost", 0.1, "")).set_index("seed")
    assert np.isnan(reached.updates[0]) and reached.last_update[0] == 20
    row = summary.at_best(reached.reset_index(), summary.study(runs, target_cost=0.1).best).iloc[0]
    assert (row.reached, row.seeds, row.censored) == (1, 2, 20) and np.isnan(row.updates)


def test_diverged_run_never_reaches_a_target():
    runs = sweep(run_rows(10, 1.0, 0, [1.0, 0.05], diverged=True))
    assert np.isnan(summary.to_target(runs, summary.Target("train_cost", 0.1, "")).updates.item())


def test_critical_batch_fit_recovers_a_known_bend():
    sizes = np.array([1, 2, 4, 8, 16, 64, 256])
    b_crit, s_min = summary.critical_batch(sizes, 300 * (1 + 5 / sizes))
    assert b_crit == pytest.approx(5) and s_min == pytest.approx(300)


def test_critical_batch_is_not_claimed_without_a_bend():
    sizes = np.array([1.0, 2, 4, 8])
    assert summary.critical_batch(sizes, 1000 / sizes) is None  # perfect scaling all the way
    assert summary.critical_batch(sizes[:2], [100, 60]) is None  # two points cannot show a bend


def test_costs_average_geometrically_and_accuracies_arithmetically():
    assert summary.average("train_cost")([0.01, 1.0]) == pytest.approx(0.1)
    assert summary.average("validation_accuracy")([0.5, 0.7]) == pytest.approx(0.6)


def test_best_lr_must_reach_every_target_not_only_the_cost():
    # η = 10 reaches cost 0.4 first but never accuracy 0.5; η = 3 reaches both, a little later
    quick_but_poor = run_rows(10, 10.0, 0, [1.0, 0.35, 0.3], [0.1, 0.4, 0.45])
    slower_but_good = run_rows(10, 3.0, 0, [1.0, 0.45, 0.2], [0.1, 0.4, 0.7])
    best = summary.study(sweep(quick_but_poor, slower_but_good), target_cost=0.4, target_accuracy=0.5).best.iloc[0]
    assert (best.lr, best.by) == (3.0, "updates to target")


def test_in_a_sweep_where_nothing_learns_every_run_is_flagged_and_none_is_best():
    runs = sweep(run_rows(10, 30.0, 0, STALLS, ACC_CHANCE), run_rows(10, 100.0, 0, [1.0, 0.5, 0.49], [0.1, 0.12, 0.13]))
    found = summary.study(runs)
    assert set(found.table.outcome) == {"did not learn"}
    assert np.isnan(found.best.lr.item())


def test_without_accuracy_a_run_learns_by_its_cost_on_a_log_scale():
    runs = sweep(run_rows(10, 1.0, 0, LEARNS), run_rows(10, 10.0, 0, [1.0, 0.6, 0.5]))  # 0.5: 15% of the way, on logs
    assert summary.study(runs).table.set_index("lr").outcome.to_dict() == {1.0: "learned", 10.0: "did not learn"}


def test_noise_scale_is_read_up_to_reaching_the_target_at_its_fraction_of_the_updates():
    # reaches cost 0.1 at update 20: the estimates at updates 5, 10 and 20 count, not the one at 30
    noisy = {"noise_scale": [(5, 1.0), (10, 40.0), (20, 60.0), (30, 1000.0)]}
    runs = sweep(run_rows(10, 1.0, 0, [1.0, 0.5, 0.05, 0.01], scheduled=noisy))
    found = summary.study(runs, target_cost=0.1)
    estimates = found.noise_scales[found.targets[0]]
    assert estimates[["step", "value", "fraction"]].values.tolist() == [[5, 1.0, 0.25], [10, 40.0, 0.5], [20, 60.0, 1.0]]


def test_a_target_met_at_the_first_measurement_is_only_an_upper_bound():
    runs = sweep(run_rows(10, 1.0, 0, [1.0, 0.05, 0.01]), run_rows(100, 1.0, 0, [1.0, 0.5, 0.05]))
    found = summary.study(runs, target_cost=0.1)
    reached = found.reached[found.targets[0]]
    assert reached.set_index("batch_size")["first"].to_dict() == {10: True, 100: False}
    assert summary.at_best(reached, found.best).set_index("batch_size").bound.to_dict() == {10: True, 100: False}


def test_updates_to_a_target_span_the_measurement_before_it_and_the_one_at_it():
    # target 0.1: seed 0 gets there at epoch 2 (20 updates; 10 before), seed 1 at epoch 3 (30; 20 before)
    runs = sweep(run_rows(10, 1.0, 0, [1.0, 0.5, 0.05, 0.01]), run_rows(10, 1.0, 1, [1.0, 0.5, 0.2, 0.05]))
    reached = summary.study(runs, target_cost=0.1).reached
    table = next(iter(reached.values()))
    assert table.set_index("seed")[["before", "updates"]].to_dict("index") == {0: {"before": 10.0, "updates": 20.0},
                                                                                 1: {"before": 20.0, "updates": 30.0}}
    found = summary.reach_estimate(table, 10, 1.0)
    assert (found.low, found.high, found.seeds) == (10.0, 30.0, 2)
    assert found.value == pytest.approx(np.sqrt(20 * 30))
    examples = summary.reach_estimate(table, 10, 1.0, "examples")  # 10 inputs per update
    assert (examples.low, examples.high) == (100.0, 300.0)


def test_a_target_reached_between_evaluations_of_the_training_split_spans_back_to_the_last_one():
    # measure.train_split_every=3: the training cost is measured at epochs 0 and 3 only
    runs = sweep(run_rows(10, 1.0, 0, [1.0, None, None, 0.05]))
    reached = summary.to_target(runs, summary.Target("train_cost", 0.1, "")).iloc[0]
    assert (reached.before, reached.updates) == (0.0, 30.0)


def exact_scaling(b_crit: dict, s_min: float = 100.0, sizes=(1, 2, 4, 8, 16, 64), gap: float = 0.0):
    """(to_target-like rows, best-like rows): each seed's updates S(m) = S_min (1 + B/m) with its own B,
    measured `gap` (a fraction) after the measurement before it."""
    rows = [{"run_id": f"{m}-{seed}", "batch_size": m, "lr": 1.0, "seed": seed, "updates": s_min * (1 + b / m),
             "before": s_min * (1 + b / m) / (1 + gap), "last_update": 1e6, "first": False}
            for m in sizes for seed, b in b_crit.items()]
    best = pd.DataFrame({"batch_size": list(sizes), "lr": 1.0})
    return pd.DataFrame(rows), best


def test_critical_batch_of_exact_scaling_data_is_recovered_with_no_spread_when_seeds_agree():
    reached, best = exact_scaling({0: 4.0, 1: 4.0, 2: 4.0})
    found = summary.critical_batch_estimate(reached, best, None)
    assert found.value == pytest.approx(4.0) and found.low == pytest.approx(4.0) and found.high == pytest.approx(4.0)


def test_critical_batch_interval_widens_with_the_gap_between_measurements_even_when_seeds_agree():
    reached, best = exact_scaling({0: 4.0, 1: 4.0}, gap=0.26)
    found = summary.critical_batch_estimate(reached, best, None)
    assert found.value == pytest.approx(4.0)
    assert found.low < 3.9 and found.high > 4.1


def test_critical_batch_interval_spans_the_single_seed_fits():
    reached, best = exact_scaling({0: 2.0, 1: 8.0})
    found = summary.critical_batch_estimate(reached, best, None)
    assert (found.low, found.high) == (pytest.approx(2.0), pytest.approx(8.0))
    assert 2.0 < found.value < 8.0
    assert not found.answers()  # ends a factor of 4 apart: too wide to give one number


def test_best_lr_interval_spans_the_best_lr_of_each_seed():
    # seed 0 is fastest at η = 1, seed 1 at η = 3
    runs = sweep(run_rows(10, 1.0, 0, [1.0, 0.05, 0.01, 0.01]), run_rows(10, 3.0, 0, [1.0, 0.5, 0.05, 0.01]),
                 run_rows(10, 1.0, 1, [1.0, 0.5, 0.2, 0.05]), run_rows(10, 3.0, 1, [1.0, 0.05, 0.01, 0.01]))
    found = summary.study(runs, target_cost=0.1)
    estimate = summary.best_lr_estimate(found.table, list(found.reached.values()), 10)
    assert (estimate.low, estimate.high, estimate.seeds) == (1.0, 3.0, 2)


def test_an_arm_that_never_reaches_the_target_is_censored_at_its_budget():
    runs = sweep(run_rows(10, 1.0, 0, [1.0, 0.05, 0.01]), run_rows("full", 1.0, 0, [1.0, 0.6, 0.5]))
    found = summary.study(runs, target_cost=0.1)
    arms = {arm.batch_size: arm for arm in summary.arms(next(iter(found.reached.values())), found.best)}
    assert not arms[10].censored
    assert arms["full"].censored and arms["full"].budget["updates"] == 20.0 and arms["full"].low("updates") == 20.0


@pytest.mark.parametrize("metric", ["train_cost", "validation_accuracy"])
def test_spread_over_seeds_is_each_groups_average_minimum_and_maximum(metric):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"batch_size": rng.choice([10, 100], 200), "lr": rng.choice([0.1, 1.0], 200),
                          "epoch": rng.integers(0, 5, 200), "steps": rng.integers(0, 50, 200).astype(float),
                          metric: rng.uniform(0.01, 1.0, 200)})
    frame.loc[[3, 50], metric] = [0.0, np.nan]  # a cost of 0, a missing value
    found = summary.spread(frame, ["batch_size", "lr"], "steps", metric).set_index(["batch_size", "lr", "epoch"])
    for key, group in frame.groupby(["batch_size", "lr", "epoch"]):
        row = found.loc[key]
        expected = summary.average(metric)(group[metric])  # the one averaging convention, group by group
        assert row["mean"] == pytest.approx(expected, rel=1e-12, nan_ok=True)
        assert (row.steps_mean, row.low, row.high, row.n) == pytest.approx(
            (group.steps.mean(), group[metric].min(), group[metric].max(), len(group)))


@pytest.mark.parametrize("params, expected", [({"budget.updates": "1500"}, "1,500 updates each"),
                                              ({"budget.examples": "20000"}, "20,000 inputs seen each"),
                                              ({"budget.updates": "None"}, "2 epochs"), ({}, "2 epochs")])
def test_run_length_names_the_budget_that_ended_every_run(params, expected):
    runs = sweep(run_rows(10, 1.0, 0, [1.0, 0.5, 0.1])).assign(**params)
    assert summary.run_length(runs, summary.finals(runs)) == expected
