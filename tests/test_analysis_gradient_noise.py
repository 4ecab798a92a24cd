"""B_simple per batch size and over training against synthetic estimates whose medians are known:
the thirds of the way to the target, the geometric mean over seeds and its interval on a log
scale, the figure's line per batch size, and the answer's comparison with B_crit."""

import math

import numpy as np
import pandas as pd
import pytest
from test_analysis_summary import run_rows, sweep

from analysis import figures, gradient_noise, summary
from analysis.report import noise_text



def estimates(series: dict, updates: int = 30) -> pd.DataFrame:
    """summary.noise_scale_on_the_way's layout: {(batch_size, seed): [(step, value), ...]}, each run
    reaching the target at `updates`."""
    rows = [{"run_id": f"{m}-{seed}", "batch_size": m, "lr": 1.0, "seed": seed, "step": step, "value": value,
             "updates": updates, "fraction": step / updates}
            for (m, seed), points in series.items() for step, value in points]
    return pd.DataFrame(rows)


def test_stages_are_the_thirds_of_the_way_to_the_target_the_last_including_it():
    assert gradient_noise.stage([0, 0.32, 0.34, 0.66, 0.67, 1.0]).tolist() == [0, 0, 1, 1, 2, 2]


def test_b_simple_of_a_batch_size_is_the_geometric_mean_of_its_seeds_medians_in_each_third():
    # m = 1, last third (steps 21-30): seed 0's median 20, seed 1's 80, geometric mean 40
    found = gradient_noise.per_batch_size(estimates({(1, 0): [(22, 10.0), (25, 20.0), (30, 30.0)],
                                                     (1, 1): [(22, 40.0), (25, 80.0), (30, 1000.0)]}))
    last = found.set_index("stage").loc["last third"]
    assert last.b_simple == pytest.approx(40.0)
    assert (last.low, last.high) == pytest.approx((20.0, 80.0))  # two seeds: the range of their values
    assert found.stage.tolist() == ["last third"] and last.seeds == 2


def test_b_simple_is_read_per_batch_size_and_stage_not_pooled():
    # m = 64 rises from 5 to 500 over training; m = 1 stays at 30: each keeps its own medians
    rising = [(3, 4.0), (5, 5.0), (7, 6.0), (13, 50.0), (25, 400.0), (28, 500.0), (30, 600.0)]
    series = {(64, 0): rising, (64, 1): rising, (1, 0): [(5, 30.0), (15, 30.0), (25, 30.0)],
              (1, 1): [(5, 30.0), (15, 30.0), (25, 30.0)]}
    found = gradient_noise.per_batch_size(estimates(series))
    assert found.batch_size.tolist() == [1, 1, 1, 64, 64, 64]
    assert found.b_simple.tolist() == pytest.approx([30, 30, 30, 5, 50, 500])
    assert (found.low.to_numpy() == pytest.approx(found.b_simple.to_numpy()))  # equal seeds: no spread


def test_one_seed_gives_b_simple_without_an_interval():
    found = gradient_noise.per_batch_size(estimates({(8, 0): [(25, 70.0)]}))
    assert found.b_simple.item() == pytest.approx(70.0) and np.isnan(found.low.item()) and np.isnan(found.high.item())


def test_b_simple_along_the_way_spans_the_seeds_medians():
    found = gradient_noise.along(estimates({(4, 0): [(1, 10.0), (2, 30.0)], (4, 1): [(1, 40.0)]}), bins=3)
    # seed 0's median in the first third is 20, seed 1's 40: their geometric mean and range
    assert found[["fraction", "b_simple", "lowest", "highest"]].to_numpy().ravel() == pytest.approx(
        [1 / 6, math.sqrt(20 * 40), 20.0, 40.0])


def measured_sweep(values: dict):
    """Runs at m = 10 and 100 reaching training cost 0.1 at update 20 (epoch 2), measuring B_simple
    every 2 updates: {batch size: its estimates' value before 14 updates, and from 14 on}."""
    runs = []
    for m, (early, late) in values.items():
        noise = {"noise_scale": [(step, early if step < 14 else late) for step in range(2, 31, 2)]}
        runs += [run_rows(m, 1.0, seed, [1.0, 0.5, 0.05, 0.01], scheduled=noise) for seed in (0, 1)]
    return sweep(*runs)


def test_answer_gives_b_simple_per_batch_size_in_the_last_third_against_b_crit():
    found = summary.study(measured_sweep({10: (5.0, 20.0), 100: (5.0, 200.0)}), target_cost=0.1)
    text = noise_text(found, found.targets[0], b_crit=40.0)
    assert "m = 10: 20 [20–20]; m = 100: 200 [200–200]; that is 0.5–5× B_crit" in text


def test_figure_draws_a_line_per_batch_size_with_the_seeds_band():
    runs = measured_sweep({10: (5.0, 20.0), 100: (5.0, 200.0)})
    figure = figures.gradient_noise_scale(runs, summary.study(runs, target_cost=0.1))
    (ax,) = [ax for ax in figure.axes if ax.get_visible()]
    means = [line for line in ax.get_lines() if line.get_gid() == "mean"]
    assert [line.get_label() for line in means] == ["m = 10", "m = 100"]
    assert means[1].get_ydata()[-1] == pytest.approx(200.0)
    assert len([c for c in ax.collections if c.get_gid() == "seeds"]) == 2
