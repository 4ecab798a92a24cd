"""Gradient descent and SGD behave as the method says they must."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from conftest import MNIST
from harness.data import Dataset, Digits, Split
from harness.network import Network
from harness.train import EVAL_CHUNK, Evaluator, batch_bounds, random_streams, train


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
        histories.append([{k: v for k, v in e.items() if k not in ("train_time", "eval_time")} for e in result.history])
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


def whole_split_metrics(network, data) -> dict:
    """The metrics as a whole split's forward pass gives them: one product per layer over all its
    inputs, on one BLAS thread, then the cost of eq. 6 and the share of correct classes."""
    metrics = {}
    with threadpool_limits(limits=1):
        for name, split in (("train", data.train), ("validation", data.validation), ("test", data.test)):
            output = network.feedforward(split.X)
            metrics[f"{name}_cost"] = 0.5 * float(np.sum(np.square(output - split.Y))) / len(split)
            if name != "train":
                metrics[f"{name}_accuracy"] = float(np.mean(np.argmax(output, axis=1) == np.argmax(split.Y, axis=1)))
    return metrics


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_evaluation_in_chunks_gives_the_whole_split_metrics_bit_for_bit(dtype):
    # splits of several chunks and a short last one, one shorter than a chunk, and a lone input
    rng = np.random.default_rng(3)
    split = lambda n: Split(rng.random((n, 784)).astype(dtype), np.eye(10, dtype=dtype)[rng.integers(10, size=n)])  # noqa: E731
    data = Dataset("random", "classification", split(2 * EVAL_CHUNK + 389), split(EVAL_CHUNK - 5), split(1))
    network = Network.from_sizes([784, 30, 20, 10], seed=1, dtype=dtype)
    evaluate = Evaluator(network, data)
    assert evaluate() == whole_split_metrics(network, data)
    with threadpool_limits(limits=1):  # and each output, which the sum of a cost may round away
        assert all(np.array_equal(out.T, network.feedforward(split.X)) for _, split, _, out in evaluate.outputs)


# OpenBLAS's kernel sets of x86-64 this machine may run, each with the instructions it needs
KERNEL_SETS = {"Haswell": "avx2", "SkylakeX": "avx512f"}
MNIST_CHUNKS_VS_WHOLE = """
import sys
import numpy as np
from threadpoolctl import threadpool_limits
from harness.data import Mnist
from harness.network import Network
from harness.train import Evaluator
network = Network.from_sizes([784, 30, 10], seed=1)
evaluate = Evaluator(network, Mnist(root=sys.argv[1], download=False).load())
evaluate()
with threadpool_limits(limits=1):
    print(*(np.array_equal(out.T, network.feedforward(split.X)) for _, split, _, out in evaluate.outputs))
"""


@pytest.mark.parametrize("kernels", sorted(KERNEL_SETS))
def test_evaluation_in_chunks_gives_mnists_whole_split_outputs_bit_for_bit_with_each_openblas_kernel_set(kernels):
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists() or KERNEL_SETS[kernels] not in cpuinfo.read_text().split():
        pytest.skip(f"this CPU cannot run OpenBLAS's {kernels} kernels")
    if not MNIST.exists():
        pytest.skip(f"no MNIST at {MNIST}")
    done = subprocess.run([sys.executable, "-c", MNIST_CHUNKS_VS_WHOLE, str(MNIST)], capture_output=True, text=True,
                          env={**os.environ, "OPENBLAS_CORETYPE": kernels}, check=True)
    assert done.stdout.split() == ["True", "True", "True"]  # train, validation and test


def test_evaluation_time_is_recorded_beside_training_time():
    data = Digits().load()
    network, rng = digits_network()
    history = train(network, data, lr=3.0, batch_size=10, epochs=2, rng=rng).history
    times = [epoch["eval_time"] for epoch in history]
    assert 0 < times[0] < times[1] < times[2]  # every epoch's evaluation adds to it
