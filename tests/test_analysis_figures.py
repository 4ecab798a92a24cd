"""Each figure function on a synthetic sweep: its axes labels, its lines, its diverged markers."""

import math

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest

from analysis import figures, summary
from analysis.loader import AnalysisError

N = 1000  # training inputs of the synthetic sweep
LRS = [0.1, 1.0, 10.0]
BATCH_SIZES = [10, 100, "full"]
SEEDS = [0, 1, 2]
EPOCHS = 10
DIVERGED = {(10, 10.0): SEEDS, (100, 10.0): [0]}  # (batch_size, lr): seeds that diverge at epoch 4


def synthetic_runs() -> pd.DataFrame:
    """A sweep in the loader's layout: cost C(e) = 0.5 exp(-r e) with a rate r growing with lr and
    with the updates per epoch; the runs in DIVERGED stop after epoch 3, as the harness stops them."""
    rows = []
    for batch_size in BATCH_SIZES:
        updates = 1 if batch_size == "full" else math.ceil(N / batch_size)
        for lr in LRS:
            for seed in SEEDS:
                diverged = seed in DIVERGED.get((batch_size, lr), [])
                rate = 0.02 * lr * updates ** 0.5 * (1 + 0.05 * seed)
                run = {"run_id": f"{batch_size}-{lr}-{seed}", "run_name": "", "status": "FINISHED",
                       "diverged": diverged, "diverged_epoch": 4 if diverged else None, "parent_run_id": "sweep",
                       "lr": lr, "batch_size": batch_size, "seed": seed, "epochs": EPOCHS}
                for epoch in range(4 if diverged else EPOCHS + 1):
                    cost = 0.5 * math.exp(-rate * epoch)
                    values = {"train_cost": cost, "validation_accuracy": 1 - 0.9 * cost / 0.5,
                              "steps": updates * epoch, "examples": N * epoch,
                              "train_time": 0.01 * epoch * (1 + 0.1 * seed) * (1 if batch_size == "full" else 3)}
                    rows += [{**run, "metric": k, "step": epoch, "value": v} for k, v in values.items()]
    frame = pd.DataFrame(rows)
    frame["diverged_epoch"] = frame["diverged_epoch"].astype("Int64")
    return frame


@pytest.fixture(scope="module")
def runs():
    return synthetic_runs()


def lines(ax, gid):
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def test_convergence_shares_a_linear_epoch_axis_only_between_batch_sizes_of_like_length_and_a_log_axis_always(runs):
    shared = [ax for ax in figures.convergence(runs).axes if ax.get_visible()]
    assert shared[0].get_shared_x_axes().joined(shared[0], shared[-1])  # every run has 10 epochs
    budget = runs[~((runs.batch_size == 10) & (runs.step > 2))]  # m = 10 stops after 2 epochs, as in an update budget
    apart = [ax for ax in figures.convergence(budget).axes if ax.get_visible()]
    assert not apart[0].get_shared_x_axes().joined(apart[0], apart[-1])
    assert apart[0].get_xlim()[1] < 3 < apart[-1].get_xlim()[1]
    logged = [ax for ax in figures.convergence(budget, x="steps").axes if ax.get_visible()]
    assert logged[0].get_xscale() == "log" and logged[0].get_shared_x_axes().joined(logged[0], logged[-1])


def test_convergence_has_one_panel_per_batch_size_and_one_mean_line_per_stable_lr(runs):
    figure = figures.convergence(runs)
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["m = 10", "m = 100", "full batch (GD)"]
    # m=10: lr=10 diverged on every seed, so 2 means; m=100 and full: 3 means
    assert [len(lines(ax, "mean")) for ax in axes] == [2, 3, 3]
    assert all(ax.get_xlabel() == "epoch" for ax in axes)
    assert axes[0].get_ylabel() == "training cost C"


def test_convergence_marks_each_diverged_run_at_its_last_finite_point(runs):
    axes = figures.convergence(runs).axes
    markers = [line for ax in axes for line in lines(ax, "diverged")]
    assert len(markers) == 4  # 3 seeds at (10, lr=10) and 1 at (100, lr=10)
    last_cost = runs[(runs.run_id == "10-10.0-0") & (runs.metric == "train_cost") & (runs.step == 3)].value.item()
    assert any(np.allclose(line.get_ydata(), [last_cost]) and line.get_xdata()[0] == 3 for line in markers)


def test_convergence_line_is_the_geometric_mean_over_seeds_on_a_log_cost_axis(runs):
    ax = figures.convergence(runs).axes[1]  # m = 100
    mean = lines(ax, "mean")[0]  # lr = 0.1
    seeds = runs[(runs.batch_size == 100) & (runs.lr == 0.1) & (runs.metric == "train_cost") & (runs.step == 5)].value
    assert mean.get_ydata()[5] == pytest.approx(np.exp(np.log(seeds).mean()))


@pytest.mark.parametrize("x, label", [("steps", "updates (parameter steps)"), ("examples", "examples seen"),
                                      ("train_time", "training time (s)")])
def test_convergence_against_cost_measures_labels_their_unit(runs, x, label):
    assert figures.convergence(runs, x=x).axes[0].get_xlabel() == label


def test_convergence_against_updates_uses_a_log_axis_as_they_span_decades_between_batch_sizes(runs):
    assert figures.convergence(runs, x="steps").axes[0].get_xscale() == "log"


def test_convergence_uses_a_log_cost_axis_when_the_cost_spans_decades(runs):
    assert figures.convergence(runs).axes[0].get_yscale() == "log"


def test_convergence_of_an_untracked_metric_is_a_one_line_error(runs):
    with pytest.raises(AnalysisError, match="metric 'nope' not tracked"):
        figures.convergence(runs, metric="nope")


def test_band_spans_the_seeds_themselves_not_a_t_interval(runs):
    ax = figures.convergence(runs).axes[1]  # m = 100
    (band, *_) = [c for c in ax.collections if c.get_gid() == "range"]  # lr = 0.1 first
    at_epoch_5 = band.get_paths()[0].vertices
    at_epoch_5 = at_epoch_5[at_epoch_5[:, 0] == 5, 1]
    seeds = runs[(runs.batch_size == 100) & (runs.lr == 0.1) & (runs.metric == "train_cost") & (runs.step == 5)].value
    assert sorted(set(at_epoch_5)) == pytest.approx([seeds.min(), seeds.max()])


def test_learning_rates_are_coloured_in_order_along_one_sequential_map():
    colour = figures.ordered_colours([10.0, 0.1, 1.0])
    assert colour[0.1] == figures.COLOURMAP(0.0) and colour[10.0] == figures.COLOURMAP(0.85)
    assert colour[1.0] == figures.COLOURMAP(0.85 * 0.5)  # halfway on a log scale


def test_heatmaps_show_final_cost_and_accuracy_with_diverged_cells_hatched(runs):
    figure = figures.heatmaps(runs)
    cost_ax, accuracy_ax = [ax for ax in figure.axes if ax.get_title()]
    assert cost_ax.get_title() == "final training cost C"
    assert accuracy_ax.get_title() == "final validation accuracy"
    assert cost_ax.get_xlabel() == "learning rate η" and cost_ax.get_ylabel() == "mini-batch size m"
    hatched = [p for p in cost_ax.patches if p.get_gid() == "diverged"]
    assert len(hatched) == 1  # only (10, lr=10) diverged on every seed
    texts = [t.get_text() for t in cost_ax.texts]
    assert "diverged" in texts and any("(1/3 div.)" in t for t in texts)


def test_heatmap_boxes_the_best_lr_of_each_batch_size_red_at_the_grid_edge(runs):
    cost_ax = figures.heatmaps(runs).axes[0]
    boxes = {(p.get_y(), p.get_x()): p.get_edgecolor() for p in cost_ax.patches if p.get_gid() == "best"}
    # rows m = 10, 100, full; columns lr = 0.1, 1, 10: best 1, 1 and, for full batch, 10 (the edge)
    assert set(boxes) == {(0, 1), (1, 1), (2, 2)}
    assert boxes[(2, 2)] == mpl.colors.to_rgba("crimson") and boxes[(0, 1)] == mpl.colors.to_rgba("black")


def test_heatmap_cell_is_the_geometric_mean_final_cost_over_seeds(runs):
    cost_ax = figures.heatmaps(runs).axes[0]
    final = runs[(runs.batch_size == 100) & (runs.lr == 1.0) & (runs.metric == "train_cost") & (runs.step == EPOCHS)]
    assert f"{np.exp(np.log(final.value).mean()):.2g}" in [t.get_text() for t in cost_ax.texts]


def test_final_vs_lr_draws_one_line_per_batch_size_and_marks_diverging_lrs(runs):
    ax = figures.final_vs_lr(runs).axes[0]
    assert ax.get_xlabel() == "learning rate η" and ax.get_ylabel() == "final training cost C"
    assert ax.get_xscale() == "log"
    assert len([c for c in ax.containers if c.get_label().startswith(("m =", "full"))]) == 3
    markers = lines(ax, "diverged")
    assert sorted(line.get_xdata()[0] for line in markers) == [10.0, 10.0]  # at lr=10 for m=10 and m=100


def test_steps_to_target_is_log_log_with_a_slope_minus_one_line(runs):
    figure = figures.steps_to_target(runs, summary.study(runs, target_cost=0.1))
    ax = figure.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_xlabel() == "mini-batch size m" and ax.get_ylabel() == "updates to reach the target"
    (ideal,) = lines(ax, "ideal")
    (x0, x1), (y0, y1) = ideal.get_xdata(), ideal.get_ydata()
    assert math.log(y1 / y0) / math.log(x1 / x0) == pytest.approx(-1)


def test_best_lr_is_the_fastest_to_the_target_among_configurations_that_learned(runs):
    found = summary.study(runs, target_cost=0.3)
    # m=100: lr=10 is fastest but one of its seeds diverged, so lr=1 is the best stable one;
    # full batch: lr=10, the largest tried, so flagged
    assert found.best.set_index("batch_size").lr.to_dict() == {10: 1.0, 100: 1.0, "full": 10.0}
    assert found.best.set_index("batch_size").edge.to_dict() == {10: "", 100: "", "full": "highest"}
    # full batch, lr=10, seed 0: 0.5 exp(-0.2 e) reaches 0.3 at e = 2.55, first measured at epoch 3
    reached = found.reached[found.targets[0]]
    assert reached.set_index("run_id").updates["full-10.0-0"] == 3


def test_steps_to_target_draws_seeds_that_never_reach_it_as_censored(runs):
    ax = figures.steps_to_target(runs, summary.study(runs, target_cost=1e-6)).axes[0]
    (censored,) = lines(ax, "censored")
    assert len(censored.get_xdata()) == 9  # 3 seeds of the best lr of each of 3 batch sizes
    assert not lines(ax, "mean")[0].get_xdata().size


def test_tuned_compares_batch_sizes_at_their_best_lr_against_updates_examples_and_time(runs):
    figure = figures.tuned(runs, found=summary.study(runs, target_cost=0.3))
    assert [ax.get_xlabel() for ax in figure.axes[:3]] == ["updates (parameter steps)", "examples seen", "training time (s)"]
    assert [t.get_text() for t in figure.legends[0].get_texts()] == [
        "m = 10, η = 1", "m = 100, η = 1", "full batch (GD), η = 10 [best η is the highest tried]"]


def test_save_writes_png_and_pdf(runs, tmp_path):
    paths = figures.save(figures.final_vs_lr(runs), tmp_path / "final_vs_lr")
    assert [p.name for p in paths] == ["final_vs_lr.png", "final_vs_lr.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"


def test_cost_axis_spans_the_runs_not_a_wide_confidence_band():
    # two seeds a decade apart: their 95% t-interval (t = 12.7 for one degree of freedom) spans
    # about 16 decades in log space; the axis must still show the runs
    two_seeds = synthetic_runs().query("seed in [0, 1]").copy()
    cost = two_seeds.metric == "train_cost"
    two_seeds.loc[cost & (two_seeds.seed == 1), "value"] *= 10
    figure = figures.convergence(two_seeds)
    observed = two_seeds[cost].value
    low, high = figure.axes[0].get_ylim()
    assert observed.min() / 2 < low <= observed.min() and observed.max() <= high < observed.max() * 2


def test_steps_to_target_draws_a_count_met_at_the_first_measurement_hollow_as_an_upper_bound(runs):
    # cost 0.45 takes a rate of 0.105 per epoch: m = 10 at η = 1 and full batch at η = 10 (rate 0.2)
    # meet it at epoch 1, their first measurement; m = 100 at η = 1 (rate 0.063) at epoch 2
    ax = figures.steps_to_target(runs, summary.study(runs, target_cost=0.45)).axes[0]
    (bound,) = lines(ax, "bound")
    assert list(bound.get_xdata()) == [10, N]


def test_steps_to_target_draws_each_seeds_count_between_the_measurements_around_the_target(runs):
    found = summary.study(runs, target_cost=0.1)
    ax = figures.steps_to_target(runs, found).axes[0]
    reached = found.reached[found.targets[0]]
    chosen = reached.merge(found.best[["batch_size", "lr"]], on=["batch_size", "lr"]).dropna(subset=["updates"])
    spans = sorted((low, high) for collection in ax.collections if collection.get_gid() == "resolution"
                   for (_, low), (_, high) in collection.get_segments())
    assert spans == sorted(zip(chosen.before, chosen.updates))


def test_final_vs_lr_draws_a_one_seed_sweep_whose_mean_is_its_only_value():
    from test_analysis_summary import run_rows
    from test_analysis_summary import sweep as sweep_of

    # final costs whose exp(log(x)) is a rounding error below x: the bars' lower length must not be negative
    runs = sweep_of(*(run_rows(10, lr, 0, [1.9, 0.5, cost]) for lr, cost in ((0.3, 0.35), (1.0, 1e-7), (3.0, 0.07634511644877787))))
    ax = figures.final_vs_lr(runs).axes[0]
    assert sorted(lines(ax, "mean")[0].get_ydata()) == [1e-7, 0.07634511644877787, 0.35]
