"""The update rules against independent truth: closed-form least squares, equivalences between
SGD and gradient descent, sampling without replacement, the random streams, float32, divergence."""

import warnings

import numpy as np
import pytest

from harness.data import Dataset, Digits, Linear, Split
from harness.network import Network
from harness.train import mini_batches, random_streams, train


def least_squares():
    """A linear-regression dataset, its network (no hidden layer, identity output, quadratic cost),
    the learning-rate threshold 2/λ_max and the closed-form minimum of the training cost."""
    data = Linear(n=400, n_in=6, n_out=2).load()
    X, Y = data.train.X, data.train.Y
    X1 = np.hstack([X, np.ones((len(X), 1))])  # θ = (W, b) acts on x̃ = (x, 1)
    # C = 1/(2n) Σ‖y − W x − b‖² has Hessian X̃ᵀX̃/n for each output; GD is stable iff η < 2/λ_max
    threshold = 2 / np.linalg.eigvalsh(X1.T @ X1 / len(X)).max()
    beta = np.linalg.lstsq(X1, Y, rcond=None)[0]
    minimum = 0.5 * np.sum((Y - X1 @ beta) ** 2) / len(X)
    network = Network.from_sizes([6, 2], seed=0, output="identity")
    return data, network, threshold, minimum


def test_least_squares_gradient_descent_converges_below_lr_threshold():
    data, network, threshold, minimum = least_squares()
    result = train(network, data, lr=0.9 * threshold, batch_size="full", epochs=300, rng=np.random.default_rng(0))
    assert result.status == "finished"
    assert result.final["train_cost"] == pytest.approx(minimum, rel=1e-9)


def test_least_squares_gradient_descent_diverges_above_lr_threshold():
    data, network, threshold, minimum = least_squares()
    result = train(network, data, lr=1.1 * threshold, batch_size="full", epochs=300, rng=np.random.default_rng(0))
    costs = [epoch["train_cost"] for epoch in result.history]
    assert result.status == "diverged"
    assert costs[-1] > costs[-11] > costs[-21]  # growing geometrically along the top eigenvector


def test_divergence_ends_run_without_warnings_and_keeps_history_finite():
    data = Linear(n=400, n_in=6).load()
    network = Network.from_sizes([6, 1], seed=0, output="identity")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning would fail the test
        result = train(network, data, lr=100.0, batch_size=10, epochs=20, rng=np.random.default_rng(0))
    assert result.status == "diverged"
    assert result.diverged_epoch == len(result.history)
    assert all(np.isfinite(value) for epoch in result.history for value in epoch.values())


def test_sgd_with_batch_size_n_equals_full_batch_gradient_descent():
    data = Digits().load()
    n = len(data.train)
    results = {}
    for batch_size in (n, "full"):
        network = Network.from_sizes([64, 20, 10], seed=1)
        train(network, data, lr=2.0, batch_size=batch_size, epochs=5, rng=np.random.default_rng(2))
        results[batch_size] = network.parameters
    # the same mean gradient, summed in another order (SGD shuffles): equal to rounding
    np.testing.assert_allclose(results[n], results["full"], rtol=1e-10, atol=1e-13)


def test_sgd_step_is_lr_over_m_times_sum_of_per_example_gradients():
    rng = np.random.default_rng(0)
    network = Network.from_sizes([5, 4, 3], seed=0)
    X, Y = rng.random((8, 5)), rng.random((8, 3))
    per_example = [network.gradient(X[i:i + 1], Y[i:i + 1]) for i in range(8)]
    expected = [w - 0.7 / 8 * sum(g[0][l] for g in per_example) for l, w in enumerate(network.weights)]
    network.step(X, Y, lr=0.7)
    for w, e in zip(network.weights, expected):
        np.testing.assert_allclose(w, e, rtol=1e-12)


def test_each_epoch_uses_every_input_once_in_a_new_order():
    X = np.arange(23.0)[:, None]
    split = Split(X, X)
    rng = np.random.default_rng(0)
    epochs = [np.concatenate([bx[:, 0].copy() for bx, _ in mini_batches(split, 5, rng, "keep")]) for _ in range(2)]
    for order in epochs:
        assert sorted(order) == list(range(23))
    assert not np.array_equal(epochs[0], epochs[1])


def test_mini_batch_rows_keep_inputs_and_targets_paired():
    X = np.arange(30.0).reshape(10, 3)
    split = Split(X, 2 * X[:, :1])
    for bx, by in mini_batches(split, 4, np.random.default_rng(0), "keep"):
        np.testing.assert_array_equal(by[:, 0], 2 * bx[:, 0])


def test_runs_with_different_lr_or_batch_size_start_from_same_weights():
    from harness import compose
    from harness.job import build

    networks = [build(compose([f"lr={lr}", f"batch_size={m}"]))[1] for lr, m in ((0.1, 10), (3.0, "full"))]
    np.testing.assert_array_equal(networks[0].parameters, networks[1].parameters)


def test_sampling_order_does_not_depend_on_network_size():
    orders = []
    for sizes in ([64, 10], [64, 100, 10]):
        init, sampling = random_streams(7)
        Network.from_sizes(sizes, seed=init)
        orders.append(sampling.permutation(100))
    np.testing.assert_array_equal(*orders)


def test_float32_network_trains_in_float32():
    data = Digits().load().astype("float32")
    init, sampling = random_streams(0)
    network = Network.from_sizes([64, 30, 10], seed=init, dtype="float32")
    result = train(network, data, lr=np.float64(3.0), batch_size=10, epochs=2, rng=sampling)
    assert result.final["test_accuracy"] > 0.8
    assert network.parameters.dtype == np.float32
    assert all(w.dtype == np.float32 for w in network.weights + network.biases)
    X, Y = data.train.X[:7], data.train.Y[:7]
    assert network.feedforward(X).dtype == np.float32
    assert all(g.dtype == np.float32 for g in sum(network.gradient(X, Y), []))


def test_float32_and_float64_follow_the_same_trajectory():
    data = Digits().load()
    finals = {}
    for dtype in ("float64", "float32"):
        network = Network.from_sizes([64, 30, 10], seed=0, dtype=dtype)
        finals[dtype] = train(network, data, 0.5, "full", 10, np.random.default_rng(0)).final["train_cost"]
    assert finals["float32"] == pytest.approx(finals["float64"], rel=1e-4)


def test_float32_network_steps_on_float64_arrays_in_float32():
    network = Network.from_sizes([3, 2], seed=0, dtype="float32")
    network.step(np.ones((4, 3)), np.zeros((4, 2)), lr=0.1)
    assert network.parameters.dtype == np.float32


def test_float64_data_is_cast_to_a_float32_network():
    data = Dataset("tiny", "regression", Split(np.ones((4, 2)), np.zeros((4, 1))), Split(np.ones((2, 2)), np.zeros((2, 1))),
                   Split(np.ones((2, 2)), np.zeros((2, 1))))
    network = Network.from_sizes([2, 1], seed=0, dtype="float32", output="identity")
    train(network, data, lr=0.1, batch_size=2, epochs=1, rng=np.random.default_rng(0))
    assert network.parameters.dtype == np.float32
