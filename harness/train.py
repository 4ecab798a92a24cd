"""Gradient descent on a network, epoch by epoch, with the measurements a convergence study needs.

An epoch is one pass over the n training inputs. Stochastic gradient descent draws a new random
order every epoch (sampling without replacement) and steps once per mini-batch of m inputs;
full-batch gradient descent (`batch_size="full"`) steps once per epoch on all n inputs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from .data import Dataset, Split
from .network import Network


@dataclass
class Result:
    status: str  # "finished" or "diverged"
    history: list[dict] = field(default_factory=list)  # one dict of metrics per epoch, epoch 0 = initial
    diverged_epoch: int | None = None

    @property
    def final(self) -> dict:
        return self.history[-1]


def random_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the initial weights and for sampling mini-batches, so runs that
    share a seed start from the same weights whatever their lr or batch_size."""
    init, sampling = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init), np.random.default_rng(sampling)


def batch_bounds(n: int, m: int, last_batch: str) -> list[tuple[int, int]]:
    """[start, stop) of each mini-batch; a short last batch is kept or dropped."""
    stop = n - n % m if last_batch == "drop" else n
    return [(i, min(i + m, n)) for i in range(0, stop, m)]


def mini_batches(train: Split, m: int, rng: np.random.Generator, last_batch: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of mini-batches, drawn without replacement in a fresh random order."""
    order = rng.permutation(len(train))
    # one gather per epoch makes every mini-batch a contiguous slice
    X, Y = train.X[order], train.Y[order]
    for start, stop in batch_bounds(len(train), m, last_batch):
        yield X[start:stop], Y[start:stop]


def evaluate(network: Network, data: Dataset) -> dict:
    """Cost (eq. 6) on each whole split, and accuracy where the task is classification."""
    metrics = {}
    for name, split in (("train", data.train), ("validation", data.validation), ("test", data.test)):
        if not len(split):
            continue
        output = network.feedforward(split.X)
        metrics[f"{name}_cost"] = network.cost_function.total(output, split.Y) / len(split)
        if data.task == "classification" and name != "train":
            metrics[f"{name}_accuracy"] = float(np.mean(np.argmax(output, axis=1) == split.labels))
    return metrics


def diverged(cost: float, initial_cost: float, ratio: float) -> bool:
    return not math.isfinite(cost) or cost > ratio * initial_cost


def train(
    network: Network,
    data: Dataset,
    lr: float,
    batch_size: int | str,
    epochs: int,
    rng: np.random.Generator,
    last_batch: str = "keep",
    divergence_ratio: float = 1e4,
    on_epoch: Callable[[int, dict], None] = lambda epoch, metrics: None,
) -> Result:
    """Train `network` in place and return its per-epoch history; stop early if it diverges."""
    n = len(data.train)
    result = Result("finished")
    steps = examples = 0
    train_time = 0.0

    def record(epoch: int, metrics: dict) -> None:
        metrics.update(steps=steps, examples=examples, train_time=train_time)
        result.history.append(metrics)
        on_epoch(epoch, metrics)

    record(0, evaluate(network, data))
    initial_cost = result.history[0]["train_cost"]
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            if batch_size == "full":
                network.step(data.train.X, data.train.Y, lr)
                steps, examples = steps + 1, examples + n
            else:
                for X, Y in mini_batches(data.train, batch_size, rng, last_batch):
                    network.step(X, Y, lr)
                    steps, examples = steps + 1, examples + len(X)
        train_time += time.perf_counter() - start
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            metrics = evaluate(network, data)
        if diverged(metrics["train_cost"], initial_cost, divergence_ratio):
            result.status = "diverged"
            result.diverged_epoch = epoch
            break
        record(epoch, metrics)
    return result
