"""Gradient descent and SGD behave as the method says they must."""

import numpy as np

from harness.data import Digits
from harness.network import Network
from harness.train import batch_bounds, random_streams, train


def digits_network(seed=0):
    init, sampling = random_streams(seed)
    return Network.from_sizes([64, 30, 10], seed=init), sampling


def test_full_batch_gradient_descent_with_small_lr_lowers_cost_every_epoch():
    data = Digits().load()
    network, rng = digits_network()
    result = train(network, data, lr=0.5, batch_size="full", epochs=20, rng=rng)
    costs = [epoch["train_cost"] for epoch in result.history]
    assert len(costs) == 21
    assert all(later < earlier for earlier, later in zip(costs, costs[1:]))


def test_full_batch_makes_one_step_per_epoch():
    data = Digits().load()
    network, rng = digits_network()
    result = train(network, data, lr=0.5, batch_size="full", epochs=3, rng=rng)
    assert [e["steps"] for e in result.history] == [0, 1, 2, 3]
    assert result.final["examples"] == 3 * len(data.train)


def test_sgd_on_digits_learns():
    data = Digits().load()
    network, rng = digits_network()
    result = train(network, data, lr=3.0, batch_size=10, epochs=30, rng=rng)
    assert result.status == "finished"
    assert result.final["test_accuracy"] > 0.93


def test_last_short_batch_is_kept_or_dropped():
    assert batch_bounds(25, 10, "keep") == [(0, 10), (10, 20), (20, 25)]
    assert batch_bounds(25, 10, "drop") == [(0, 10), (10, 20)]
    assert batch_bounds(20, 10, "drop") == [(0, 10), (10, 20)]


def test_same_seed_gives_identical_history():
    data = Digits().load()
    histories = []
    for _ in range(2):
        network, rng = digits_network(seed=4)
        result = train(network, data, lr=3.0, batch_size=10, epochs=2, rng=rng)
        histories.append([{k: v for k, v in e.items() if k != "train_time"} for e in result.history])
    assert histories[0] == histories[1]


def test_steps_and_examples_count_the_short_last_batch_only_when_kept():
    from harness.data import Blobs

    data = Blobs(n=205).load()
    counts = {}
    for last_batch in ("keep", "drop"):
        network = Network.from_sizes([2, 4, 3], seed=0)
        final = train(network, data, 0.5, 10, 2, np.random.default_rng(0), last_batch=last_batch).final
        counts[last_batch] = (final["steps"], final["examples"])
    assert counts == {"keep": (42, 410), "drop": (40, 400)}
