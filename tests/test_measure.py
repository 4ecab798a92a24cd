"""The optional measurements: per-example gradient norms, the gradient noise scale, and what
`train` records when they are on."""

import numpy as np
import pytest

from harness import compose
from harness.config import ConfigError, check
from harness.data import Blobs, Linear
from harness.measure import Measurements, eval_schedule, gradient_noise, noise_scale, train_split_due
from harness.network import Network
from harness.train import train


def per_example_gradients(network, X, Y):
    """One row per example: its gradient over all weights and biases, one backprop each."""
    rows = []
    for i in range(len(X)):
        grad_w, grad_b = network.gradient(X[i:i + 1], Y[i:i + 1])
        rows.append(np.concatenate([g.ravel() for g in grad_w + grad_b]))
    return np.array(rows)


def small_problem(n=12):
    rng = np.random.default_rng(0)
    return Network.from_sizes([4, 5, 3], seed=1), rng.random((n, 4)), rng.random((n, 3))


def test_per_example_sq_norms_match_single_example_gradients():
    network, X, Y = small_problem()
    expected = np.sum(per_example_gradients(network, X, Y) ** 2, axis=1)
    np.testing.assert_allclose(network.per_example_sq_norms(X, Y), expected, rtol=1e-12)


def test_noise_scale_matches_naive_per_example_computation():
    network, X, Y = small_problem()
    g = per_example_gradients(network, X, Y)
    trace = g.var(axis=0, ddof=1).sum()
    signal = np.sum(g.mean(axis=0) ** 2) - trace / len(X)
    assert noise_scale(network, X, Y) == pytest.approx(trace / signal, rel=1e-10)


def test_noise_estimates_are_unbiased_over_random_probes():
    # population: n examples at fixed parameters; probes of B drawn independently with replacement
    data = Linear(n=60, n_in=3, noise=1.0).load()
    X, Y = data.train.X, data.train.Y
    network = Network.from_sizes([3, 1], seed=0, output="identity")
    g = per_example_gradients(network, X, Y)
    true_trace, true_signal = g.var(axis=0).sum(), np.sum(g.mean(axis=0) ** 2)
    rng = np.random.default_rng(0)
    estimates = np.array([gradient_noise(network, X[p], Y[p]) for p in rng.integers(len(X), size=(4000, 5))])
    mean, standard_error = estimates.mean(axis=0), estimates.std(axis=0) / np.sqrt(len(estimates))
    assert abs(mean[0] - true_trace) < 4 * standard_error[0]
    assert abs(mean[1] - true_signal) < 4 * standard_error[1]


def test_noise_scale_is_none_when_gradient_is_lost_in_noise():
    # at the least-squares minimum of the probe itself, the mean gradient is zero
    X = np.array([[0.0], [1.0], [2.0]])
    Y = np.array([[0.0], [2.0], [1.0]])
    network = Network([np.array([[0.5]])], [np.array([0.5])], output="identity")
    assert noise_scale(network, X, Y) is None


def blobs_run(measure, epochs=2, batch_size=10):
    network = Network.from_sizes([2, 8, 3], seed=0)
    calls = []
    result = train(network, Blobs(n=200).load(), 1.0, batch_size, epochs, np.random.default_rng(0), measure=measure,
                   on_epoch=lambda epoch, metrics, series: calls.append((epoch, series)))
    return result, calls


def test_batch_cost_is_recorded_every_k_steps_and_given_to_each_epoch():
    result, calls = blobs_run(Measurements(batch_cost_every=3))
    steps = [step for step, _ in result.series["batch_cost"]]
    assert steps == list(range(3, 41, 3))  # 20 updates per epoch, 2 epochs
    assert [step for _, series in calls for step, _ in series.get("batch_cost", [])] == steps
    assert [step for step, _ in calls[2][1]["batch_cost"]] == [21, 24, 27, 30, 33, 36, 39]


def test_full_batch_cost_before_each_step_is_previous_epoch_train_cost():
    result, _ = blobs_run(Measurements(batch_cost_every=1), epochs=3, batch_size="full")
    before_step = [value for _, value in result.series["batch_cost"]]
    np.testing.assert_allclose(before_step, [e["train_cost"] for e in result.history[:-1]], rtol=1e-12)


def test_grad_norm_is_norm_of_whole_training_set_gradient():
    data = Blobs(n=200).load()
    network = Network.from_sizes([2, 8, 3], seed=0)
    grad_w, grad_b = network.gradient(data.train.X, data.train.Y)
    expected = np.sqrt(sum(np.sum(g ** 2) for g in grad_w + grad_b))
    result, _ = blobs_run(Measurements(grad_norm=True))
    assert result.history[0]["grad_norm"] == pytest.approx(expected, rel=1e-12)
    assert all("grad_norm" in epoch for epoch in result.history)


def test_measurements_do_not_change_the_trajectory():
    plain, _ = blobs_run(Measurements())
    measured, _ = blobs_run(Measurements(batch_cost_every=1, grad_norm=True, noise_scale_every=2, noise_probe=20))
    assert len(measured.series["noise_scale"]) > 0
    drop = ("train_time", "eval_time", "grad_norm")
    assert [{k: v for k, v in e.items() if k not in drop} for e in measured.history] == \
           [{k: v for k, v in e.items() if k not in drop} for e in plain.history]


def test_eval_schedule_puts_n_log_spaced_points_in_each_decade():
    assert sorted(eval_schedule(Measurements(eval_per_decade=4), 100)) == [1, 2, 3, 6, 10, 18, 32, 56, 100]


def test_eval_schedule_every_k_updates_up_to_the_last():
    assert sorted(eval_schedule(Measurements(eval_every=40), 100)) == [40, 80]


def test_scheduled_evaluation_records_costs_at_those_updates_and_leaves_the_run_unchanged():
    data = Blobs(n=90).load()
    plain = train(Network.from_sizes([2, 4, 3], seed=0), data, 1.0, 10, 3, np.random.default_rng(1))
    network = Network.from_sizes([2, 4, 3], seed=0)
    timed = train(network, data, 1.0, 10, 3, np.random.default_rng(1), measure=Measurements(eval_every=3))
    costs = timed.series["train_cost_by_update"]
    assert [step for step, _ in costs] == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]  # 9 batches of 10 per epoch
    drop_time = lambda history: [{k: v for k, v in e.items() if k not in ("train_time", "eval_time")} for e in history]  # noqa: E731
    assert drop_time(timed.history) == drop_time(plain.history)  # bit-identical: evaluation draws nothing
    assert costs[0][1] == plain.history[0]["train_cost"] and costs[-1][1] == plain.final["train_cost"]
    assert set(timed.series) == {f"{split}_{what}_by_update" for split in ("train", "validation", "test")
                                 for what in ("cost", "accuracy") if (split, what) != ("train", "accuracy")}


def test_the_training_split_is_due_every_kth_epoch_and_at_the_last_and_every_kth_scheduled_update():
    at_epoch, at_update = train_split_due(Measurements(train_split_every=3), {2, 4, 6, 8, 10, 12, 14}, last_epoch=7)
    assert [epoch for epoch in range(8) if at_epoch(epoch)] == [0, 3, 6, 7]
    assert sorted(at_update) == [6, 12]


def test_evaluating_the_training_split_less_often_leaves_the_other_metrics_and_the_run_unchanged():
    data = Blobs(n=90).load()
    runs = {k: train(Network.from_sizes([2, 4, 3], seed=0), data, 1.0, 10, 4, np.random.default_rng(1),
                     measure=Measurements(eval_every=3, train_split_every=k)) for k in (1, 3)}
    every, sparse = runs[1], runs[3]
    assert [epoch for epoch, metrics in enumerate(sparse.history) if "train_cost" in metrics] == [0, 3, 4]
    drop = ("train_cost", "train_time", "eval_time")
    assert [{k: v for k, v in e.items() if k not in drop} for e in sparse.history] == \
           [{k: v for k, v in e.items() if k not in drop} for e in every.history]
    assert [sparse.history[e]["train_cost"] for e in (0, 3, 4)] == [every.history[e]["train_cost"] for e in (0, 3, 4)]
    measured = dict(sparse.series["train_cost_by_update"])
    assert sorted(measured) == [0, 9, 18, 27, 36] and all(every_value == measured[step] for step, every_value
                                                           in every.series["train_cost_by_update"] if step in measured)
    assert sparse.series["test_cost_by_update"] == every.series["test_cost_by_update"]


def test_a_run_that_diverges_between_evaluations_of_its_training_split_stops_by_its_validation_cost():
    data, stopped = Linear(n=60).load(), {}
    for k in (1, 4):
        network = Network.from_sizes([data.n_in, 4, data.n_out], seed=0, output="identity")
        result = train(network, data, 1e3, 10, 20, np.random.default_rng(0), measure=Measurements(train_split_every=k))
        stopped[k] = (result.status, result.diverged_epoch)
    assert stopped[4] == stopped[1] == ("diverged", 1)  # its costs stay finite for epochs more (1e40 at epoch 1)


def test_training_split_every_below_one_is_a_config_error():
    with pytest.raises(ConfigError, match="measure.train_split_every: 0 must be an integer >= 1"):
        check(compose(["measure.train_split_every=0"]))


@pytest.mark.parametrize("key", ["eval_every", "eval_per_decade"])
def test_negative_evaluation_schedule_is_a_config_error(key):
    with pytest.raises(ConfigError, match=f"measure.{key}: -1 must be an integer >= 0"):
        check(compose([f"measure.{key}=-1"]))
