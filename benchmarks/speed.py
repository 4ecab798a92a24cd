"""Training speed of the harness on MNIST [784, 30, 10], against a per-example reference loop and
against the machine's matrix-multiply peak, all measured in this run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/speed.py [--repeats 5] [--loop-examples 2000]

(`env -u` where the machine sets those variables: they pin OpenBLAS to older kernels; the
first lines printed name the kernels in use.)

For m = 1, 10, 100, 1000 and full batch it prints examples/s of `harness.train.train` (its
`train_time`, evaluation excluded, sampling included) and of `BookNetwork` below, which trains
the way the book's network.py does: column vectors, backpropagation one example at a time,
summing the per-example gradients over the mini-batch, then updating. The compute limit is the
peak of a large float64 matrix product (by scipy's BLAS, which the harness calls) divided by the
work per example, ≈ 6 × the number of weights FLOPs (2 for the forward pass, 4 for the backward
pass). Each figure is the best of `--repeats` runs.

Data: the real MNIST training set from ../shared/data/mnist beside the repository, or from the
harness's data cache ($HARNESS_DATA); otherwise synthetic data of its shape (50,000 × 784 in
[0, 1], one-hot targets over 10 classes).

Targets (float64): m = 10 at least 12× the loop; m ≥ 1000 and full batch at least 35% of the
compute limit; float32 at least 1.4× float64 at m = 100.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from scipy.linalg.blas import dgemm
from threadpoolctl import threadpool_info

from harness.data import Dataset, Mnist, Split
from harness.network import Network
from harness.train import train

SIZES = [784, 30, 10]
BATCH_SIZES = [1, 10, 100, 1000, "full"]
LR = 3.0
REPO = Path(__file__).resolve().parent.parent


def mnist_or_synthetic() -> tuple[Dataset, str]:
    for root in (REPO.parent / "shared" / "data" / "mnist", None):
        try:
            return Mnist(root=str(root) if root else None, download=False).load(), f"MNIST ({root or 'data cache'})"
        except ValueError:
            continue
    rng = np.random.default_rng(0)
    labels = rng.integers(10, size=50_000)
    Y = np.eye(10)[labels]
    empty = Split(np.empty((0, 784)), np.empty((0, 10)))
    return Dataset("synthetic", "classification", Split(rng.random((50_000, 784)), Y), empty, empty), "synthetic"


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


class BookNetwork:
    """The reference: network.py of Nielsen's book, ch. 1, with the same weights as the harness."""

    def __init__(self, weights, biases):
        self.weights = [w.copy() for w in weights]
        self.biases = [b.reshape(-1, 1).copy() for b in biases]

    def sgd_epoch(self, training_data, mini_batch_size, eta, rng):
        rng.shuffle(training_data)
        n = len(training_data)
        for k in range(0, n, mini_batch_size):
            self.update_mini_batch(training_data[k:k + mini_batch_size], eta)

    def update_mini_batch(self, mini_batch, eta):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        self.weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, len(SIZES)):
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sigmoid_prime(zs[-l])
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return nabla_b, nabla_w


def best_time(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(repeats: int, n: int = 2000) -> float:
    """FLOP/s of an n×n float64 matrix product (2n³ operations) by the BLAS the harness calls
    (scipy's), best of `repeats`."""
    a, b = np.random.default_rng(0).random((2, n, n))
    product = lambda: dgemm(1.0, a.T, b.T)  # transposes: column-major, so nothing is copied
    product()  # warm up the threads
    return 2 * n**3 / best_time(product, repeats)


def harness_rate(data: Dataset, m, dtype: str, repeats: int, examples: int) -> float:
    """Examples/s of one epoch of `train` on the first `examples` training inputs (all for full batch)."""
    subset = data if m == "full" else Dataset(data.name, data.task, Split(data.train.X[:examples], data.train.Y[:examples]),
                                                 data.validation, data.test)
    subset = subset.astype(dtype)
    network = Network.from_sizes(SIZES, seed=0, dtype=dtype)
    rng = np.random.default_rng(1)
    times = [train(network, subset, LR, m, 1, rng).final["train_time"] for _ in range(repeats)]
    return len(subset.train) / min(times)


def loop_rate(data: Dataset, m, repeats: int, examples: int) -> float:
    """Examples/s of BookNetwork on `examples` inputs; full batch is one batch of all of them,
    whose per-example cost does not depend on how many there are."""
    training_data = [(x.reshape(-1, 1), y.reshape(-1, 1)) for x, y in zip(data.train.X[:examples], data.train.Y[:examples])]
    reference = Network.from_sizes(SIZES, seed=0)
    book = BookNetwork(reference.weights, reference.biases)
    rng = np.random.default_rng(1)
    size = examples if m == "full" else m
    return examples / best_time(lambda: book.sgd_epoch(training_data, size, LR, rng), repeats)


def check_reference_agrees(data: Dataset) -> float:
    """Largest difference between the harness's and the loop's weights after one step on 10 inputs."""
    network = Network.from_sizes(SIZES, seed=0)
    book = BookNetwork(network.weights, network.biases)
    X, Y = data.train.X[:10], data.train.Y[:10]
    network.step(X, Y, LR)
    book.update_mini_batch([(x.reshape(-1, 1), y.reshape(-1, 1)) for x, y in zip(X, Y)], LR)
    return max(float(np.max(np.abs(w - bw))) for w, bw in zip(network.weights, book.weights))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure; the best is kept")
    parser.add_argument("--loop-examples", type=int, default=2000, help="inputs the reference loop trains on")
    parser.add_argument("--examples", type=int, default=10_000,
                        help="inputs of one timed harness epoch for m < 1000 (all 50,000 for m >= 1000 and full)")
    args = parser.parse_args()

    data, source = mnist_or_synthetic()
    n_weights = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    flops_per_example = 6 * n_weights
    blas = "; ".join(f"{Path(lib['filepath']).parent.name.split('.')[0]}'s {lib['internal_api']} {lib.get('version')} "
                     f"({lib.get('architecture')} kernels, {lib['num_threads']} threads)"
                     for lib in threadpool_info() if lib["user_api"] == "blas")
    print(f"data: {source}, {len(data.train)} training inputs; network {SIZES}, lr {LR}")
    print(f"machine: {os.cpu_count()} cores; BLAS: {blas}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}")
    print(f"reference check: harness and loop weights differ by at most {check_reference_agrees(data):.1e} after one step")
    peak = matmul_peak(args.repeats)
    limit = peak / flops_per_example
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s (2000×2000 float64); FLOPs/example ≈ 6 × {n_weights} weights "
          f"= {flops_per_example}; compute limit {limit:,.0f} examples/s\n")

    print(f"{'m':>6} {'harness ex/s':>13} {'loop ex/s':>10} {'speedup':>8} {'% of limit':>11}")
    rates = {}
    for m in BATCH_SIZES:
        examples = len(data.train) if m == "full" or m >= 1000 else args.examples
        rates[m] = harness_rate(data, m, "float64", args.repeats, examples)
        loop = loop_rate(data, m, args.repeats, args.loop_examples)
        print(f"{m:>6} {rates[m]:>13,.0f} {loop:>10,.0f} {rates[m] / loop:>7.1f}× {100 * rates[m] / limit:>10.1f}%")
    float32 = harness_rate(data, 100, "float32", args.repeats, args.examples)
    print(f"\nfloat32 at m = 100: {float32:,.0f} ex/s, {float32 / rates[100]:.2f}× float64")


if __name__ == "__main__":
    main()
