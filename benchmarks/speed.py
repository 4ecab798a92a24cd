"""Training speed of the harness on MNIST [784, 30, 10], against a per-example reference loop and
against the machine's matrix-multiply peak, all measured in this run, on --threads BLAS threads
(1 by default: every product, the peak's included).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/speed.py [--rounds 5] [--loop-examples 2000]

(`env -u` where the machine sets those variables: they pin OpenBLAS to older kernels; the
first lines printed name the kernels in use.)

For m = 1, 10, 100, 1000 and full batch it prints examples/s of `harness.train.train` (its
`train_time`, evaluation excluded, sampling included) and of `BookNetwork` below, which trains
the way the book's network.py does: column vectors, backpropagation one example at a time,
summing the per-example gradients over the mini-batch, then updating. The compute limit is the
peak of a large float64 matrix product (by scipy's BLAS, which the harness calls) divided by the
work per example, ≈ 6 × the number of weights FLOPs (2 for the forward pass, 4 for the backward
pass). Every measurement is one arm; the arms alternate over `--rounds` rounds (at least 5), and
each figure is printed as the median and spread of its rounds (ratios: of each round's pair). A
share of the compute limit above 100% is not printed: the peak was then measured low.

Data: the real MNIST training set from ../shared/data/mnist beside the repository, or from the
harness's data cache ($HARNESS_DATA); otherwise synthetic data of its shape (50,000 × 784 in
[0, 1], one-hot targets over 10 classes).

Targets (float64): m = 10 at least 12× the loop; m ≥ 1000 and full batch at least 35% of the
compute limit; float32 at least 1.4× float64 at m = 100.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from scipy.linalg.blas import dgemm
from threadpoolctl import threadpool_info

from timing import load, pin_blas, rounds, share_of_limit, spread, timed

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


def matmul_peak(n: int = 2000) -> float:
    """FLOP/s of an n×n float64 matrix product (2n³ operations) by the BLAS the harness calls
    (scipy's)."""
    a, b = np.random.default_rng(0).random((2, n, n))
    return 2 * n**3 / timed(dgemm, 1.0, a.T, b.T)[0]  # transposes: column-major, so nothing is copied


def harness_rate(data: Dataset, m, dtype: str, examples: int) -> float:
    """Examples/s of one epoch of `train` on the first `examples` training inputs (all for full batch)."""
    subset = data if m == "full" else Dataset(data.name, data.task, Split(data.train.X[:examples], data.train.Y[:examples]),
                                                 data.validation, data.test)
    subset = subset.astype(dtype)
    network = Network.from_sizes(SIZES, seed=0, dtype=dtype)
    rng = np.random.default_rng(1)
    return len(subset.train) / train(network, subset, LR, m, 1, rng).final["train_time"]


def loop_rate(data: Dataset, m, examples: int) -> float:
    """Examples/s of BookNetwork on `examples` inputs; full batch is one batch of all of them,
    whose per-example cost does not depend on how many there are."""
    training_data = [(x.reshape(-1, 1), y.reshape(-1, 1)) for x, y in zip(data.train.X[:examples], data.train.Y[:examples])]
    reference = Network.from_sizes(SIZES, seed=0)
    book = BookNetwork(reference.weights, reference.biases)
    rng = np.random.default_rng(1)
    size = examples if m == "full" else m
    return examples / timed(book.sgd_epoch, training_data, size, LR, rng)[0]


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
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every arm (at least 5)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads of every product")
    parser.add_argument("--loop-examples", type=int, default=2000, help="inputs the reference loop trains on")
    parser.add_argument("--examples", type=int, default=10_000,
                        help="inputs of one timed harness epoch for m < 1000 (all 50,000 for m >= 1000 and full)")
    args = parser.parse_args()
    pinned = pin_blas(args.threads)

    data, source = mnist_or_synthetic()
    n_weights = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    flops_per_example = 6 * n_weights
    blas = "; ".join(f"{Path(lib['filepath']).parent.name.split('.')[0]}'s {lib['internal_api']} {lib.get('version')} "
                     f"({lib.get('architecture')} kernels, {lib['num_threads']} threads)"
                     for lib in threadpool_info() if lib["user_api"] == "blas")
    print(f"data: {source}, {len(data.train)} training inputs; network {SIZES}, lr {LR}; {pinned}")
    print(f"machine: {os.cpu_count()} cores; BLAS: {blas}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}")
    print(f"reference check: harness and loop weights differ by at most {check_reference_agrees(data):.1e} after one step")
    print(f"at the start: {load()}")
    examples = lambda m: len(data.train) if m == "full" or m >= 1000 else args.examples  # noqa: E731
    arms = {"peak": lambda: {"flops": matmul_peak()}}
    for m in BATCH_SIZES:
        arms[f"harness {m}"] = lambda m=m: {"rate": harness_rate(data, m, "float64", examples(m))}
        arms[f"loop {m}"] = lambda m=m: {"rate": loop_rate(data, m, args.loop_examples)}
    arms["float32 100"] = lambda: {"rate": harness_rate(data, 100, "float32", args.examples)}
    samples = rounds(arms, args.rounds)
    print(f"at the end:   {load()}")
    rate = lambda arm: samples[arm]["rate"]  # noqa: E731
    peak = samples["peak"]["flops"]
    limit = float(np.median(peak)) / flops_per_example
    print(f"matmul peak: {spread([p / 1e9 for p in peak], 'GFLOP/s')} (2000×2000 float64); FLOPs/example ≈ 6 × "
          f"{n_weights} weights = {flops_per_example}; compute limit {limit:,.0f} examples/s (at the median peak)\n")
    for m in BATCH_SIZES:
        print(f"m = {m}: harness {spread(rate(f'harness {m}'), 'ex/s')}; loop {spread(rate(f'loop {m}'), 'ex/s')}; "
              f"speed-up {spread([h / l for h, l in zip(rate(f'harness {m}'), rate(f'loop {m}'))], '×')}; "
              f"{share_of_limit(float(np.median(rate(f'harness {m}'))), limit)} of the limit")
    ratio = [f / d for f, d in zip(rate("float32 100"), rate("harness 100"))]
    print(f"\nfloat32 at m = 100: {spread(rate('float32 100'), 'ex/s')}, {spread(ratio, '×')} float64")


if __name__ == "__main__":
    main()
