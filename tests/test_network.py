"""The network's cost and gradients against hand computation and finite differences."""

import numpy as np
import pytest

from harness.network import Network


def numerical_gradient(network, X, Y, eps=1e-6):
    """Central differences of C with respect to every weight and bias."""
    grads = []
    for params in (network.weights, network.biases):
        layer_grads = []
        for p in params:
            g = np.zeros_like(p)
            for i in np.ndindex(p.shape):
                saved = p[i]
                p[i] = saved + eps
                up = network.cost(X, Y)
                p[i] = saved - eps
                down = network.cost(X, Y)
                p[i] = saved
                g[i] = (up - down) / (2 * eps)
            layer_grads.append(g)
        grads.append(layer_grads)
    return grads


def relative_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "identity"])
@pytest.mark.parametrize("output,cost", [("sigmoid", "quadratic"), ("identity", "quadratic"), ("tanh", "quadratic"),
                                         ("sigmoid", "cross_entropy")])
def test_backprop_matches_finite_differences(activation, output, cost):
    rng = np.random.default_rng(1)
    # scaled init keeps outputs off saturation, where finite differences of ln(1 − a) lose digits
    network = Network.from_sizes([4, 5, 3, 2], seed=2, init="scaled", activation=activation, output=output, cost=cost)
    X = rng.standard_normal((7, 4))
    Y = rng.uniform(0.05, 0.95, (7, 2))
    grad_w, grad_b = network.gradient(X, Y)
    num_w, num_b = numerical_gradient(network, X, Y)
    for analytic, numeric in zip(grad_w + grad_b, num_w + num_b):
        assert relative_error(analytic, numeric) < 1e-6


def test_quadratic_cost_matches_hand_computation():
    # one layer, W = [[1, -1]], b = [0.5], identity output: a = x1 - x2 + 0.5
    network = Network([np.array([[1.0, -1.0]])], [np.array([0.5])], output="identity")
    X = np.array([[1.0, 0.0], [0.0, 2.0]])  # a = 1.5, -1.5
    Y = np.array([[1.0], [0.0]])  # errors 0.5, -1.5
    assert network.cost(X, Y) == pytest.approx((0.5**2 + 1.5**2) / (2 * 2))


def test_sigmoid_cost_matches_hand_computation():
    network = Network([np.zeros((2, 3))], [np.array([0.0, np.log(3.0)])])  # a = (0.5, 0.75)
    X = np.ones((1, 3))
    Y = np.array([[1.0, 0.0]])
    assert network.cost(X, Y) == pytest.approx(0.5 * (0.5**2 + 0.75**2))


def test_mini_batch_gradient_is_mean_of_per_example_gradients():
    rng = np.random.default_rng(0)
    network = Network.from_sizes([6, 4, 3], seed=0)
    X, Y = rng.random((5, 6)), rng.random((5, 3))
    batch_w, batch_b = network.gradient(X, Y)
    singles = [network.gradient(X[i : i + 1], Y[i : i + 1]) for i in range(5)]
    for l in range(2):
        np.testing.assert_allclose(batch_w[l], np.mean([g[0][l] for g in singles], axis=0), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(batch_b[l], np.mean([g[1][l] for g in singles], axis=0), rtol=1e-12, atol=1e-15)


def test_step_moves_parameters_against_the_gradient():
    rng = np.random.default_rng(0)
    network = Network.from_sizes([3, 2], seed=0)
    X, Y = rng.random((4, 3)), rng.random((4, 2))
    before_w, before_b = network.weights[0].copy(), network.biases[0].copy()
    grad_w, grad_b = network.gradient(X, Y)
    network.step(X, Y, lr=0.5)
    np.testing.assert_allclose(network.weights[0], before_w - 0.5 * grad_w[0])
    np.testing.assert_allclose(network.biases[0], before_b - 0.5 * grad_b[0])


def test_step_and_gradient_do_not_depend_on_memory_layout():
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((4, 3)), rng.standard_normal((2, 4))]
    biases = [rng.standard_normal(4), rng.standard_normal(2)]
    X, Y = rng.random((5, 3)), rng.random((5, 2))
    contiguous = Network(weights, biases)
    fortran = Network([np.asfortranarray(w) for w in weights], biases)
    strided_X = np.zeros((5, 6))[:, ::2]  # every other column of a wider array
    strided_X[:] = X
    expected = sum(contiguous.gradient(X, Y), [])
    for got in (sum(fortran.gradient(np.asfortranarray(X), Y), []), sum(fortran.gradient(strided_X, Y), [])):
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-14)
    contiguous.step(X, Y, lr=0.5)
    fortran.step(strided_X, Y, lr=0.5)
    np.testing.assert_allclose(fortran.parameters, contiguous.parameters, rtol=1e-14)


def test_gradient_after_a_non_finite_batch_is_exact():
    # the gradient buffers are overwritten (β = 0 in BLAS), never scaled, so a NaN left in them is not carried over
    rng = np.random.default_rng(0)
    X, Y = rng.random((4, 3)), rng.random((4, 2))
    network = Network.from_sizes([3, 5, 2], seed=0)
    with np.errstate(invalid="ignore"):
        network.gradient(np.full_like(X, np.nan), Y)
    for g, expected in zip(sum(network.gradient(X, Y), []), sum(Network.from_sizes([3, 5, 2], seed=0).gradient(X, Y), [])):
        np.testing.assert_array_equal(g, expected)


def test_same_seed_gives_same_initial_weights():
    a, b = Network.from_sizes([5, 4, 2], seed=3), Network.from_sizes([5, 4, 2], seed=3)
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(wa, wb)


def test_cross_entropy_gradient_matches_finite_differences_near_saturation():
    # δ^L = a − y (eq. 66) stays exact where a(1 − a) is tiny
    network = Network([np.array([[4.0, -3.0], [-5.0, 6.0]])], [np.array([1.0, -1.0])], cost="cross_entropy")
    X, Y = np.array([[2.0, -1.0], [-1.5, 1.5]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    grad_w, grad_b = network.gradient(X, Y)
    num_w, num_b = numerical_gradient(network, X, Y)
    assert relative_error(grad_w[0], num_w[0]) < 1e-6 and relative_error(grad_b[0], num_b[0]) < 1e-6


def test_cross_entropy_of_saturated_wrong_output_is_finite():
    network = Network([np.array([[100.0]])], [np.array([0.0])], cost="cross_entropy")  # σ(100) rounds to 1
    cost = network.cost(np.array([[1.0]]), np.array([[0.0]]))
    assert cost == pytest.approx(-np.log(np.finfo(float).epsneg))


def test_gradient_returns_new_arrays_each_call():
    rng = np.random.default_rng(0)
    network = Network.from_sizes([3, 2], seed=0)
    X, Y = rng.random((4, 3)), rng.random((4, 2))
    first, _ = network.gradient(X, Y)
    kept = first[0].copy()
    network.gradient(2 * X, Y)
    np.testing.assert_array_equal(first[0], kept)


def test_weights_are_views_of_the_parameter_vector():
    network = Network.from_sizes([3, 4, 2], seed=0)
    network.parameters[:] = np.arange(network.parameters.size)
    assert network.weights[0][0, 1] == 1 and network.biases[0][0] == 12 and network.weights[1][0, 0] == 16


def test_unknown_activation_is_one_clear_error():
    with pytest.raises(ValueError, match="activation: 'softsign' is not one of sigmoid, tanh, relu, identity"):
        Network.from_sizes([3, 2], activation="softsign")
