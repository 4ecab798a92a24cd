"""Gradient descent on a network, epoch by epoch, with the measurements a convergence study needs.

An epoch is one pass over the n training inputs. Stochastic gradient descent draws a new random
order every epoch (sampling without replacement) and steps once per mini-batch of m inputs;
full-batch gradient descent (`batch_size="full"`) steps once per epoch on all n inputs, on the
training arrays themselves (no shuffled copy: the mean gradient does not depend on the order).

A run lasts a number of epochs, or a `Budget` of updates or of inputs seen, so that batch sizes
can be compared at equal updates rather than at equal epochs (which give a large m few updates).
A budget may end in the middle of an epoch: that last, partial epoch is recorded like any other,
its metrics measured after the final update, its `steps` and `examples` saying how far it went.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Callable, Iterator, Optional

import numpy as np
from threadpoolctl import ThreadpoolController

from .data import Dataset, Split
from . import names
from .measure import Measurements, eval_schedule, gradient_norm, noise_scale, train_split_due
from .network import Network

# from this many inputs per mini-batch on, matrix products are big enough to share between BLAS
# threads; on fewer, waking a second thread costs more than it saves
SHARED_BATCH = 1000

Series = dict[str, list[tuple[int, float]]]  # per-step measurements by name: [(step, value), ...]


@dataclass
class Result:
    status: str  # "finished" or "diverged"
    history: list[dict] = field(default_factory=list)  # one dict of metrics per epoch, epoch 0 = initial
    diverged_epoch: int | None = None
    series: Series = field(default_factory=dict)  # batch_cost, noise_scale, *_by_update: (step, value), step = updates made

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


@dataclass
class Budget:
    """How long a run trains instead of its `epochs`: exactly `updates` updates, or the fewest
    updates that see at least `examples` training inputs (a run takes whole mini-batches, so it
    sees up to m − 1 more). At most one is set; neither: the run's epochs are its budget."""
    updates: Optional[int] = None
    examples: Optional[int] = None


def batch_sizes(n: int, batch_size: int | str, last_batch: str) -> list[int]:
    """The inputs of each update of an epoch, in order."""
    return [n] if batch_size == "full" else [stop - start for start, stop in batch_bounds(n, batch_size, last_batch)]


def planned_updates(n: int, batch_size: int | str, last_batch: str, epochs: int, budget: Budget = Budget()) -> int:
    """The updates a run makes: `budget.updates`; or the fewest whose mini-batches hold at least
    `budget.examples` inputs; or `epochs` × the updates of an epoch."""
    sizes = batch_sizes(n, batch_size, last_batch)
    if budget.updates is not None:
        return budget.updates
    if budget.examples is not None:
        whole, rest = divmod(budget.examples, sum(sizes))
        return whole * len(sizes) + bisect.bisect_left(list(itertools.accumulate(sizes, initial=0)), rest)
    return epochs * len(sizes)


def planned_epochs(n: int, batch_size: int | str, last_batch: str, epochs: int, budget: Budget = Budget()) -> int:
    """The epochs a run records after epoch 0, the last of them partial when the budget ends inside it."""
    return math.ceil(planned_updates(n, batch_size, last_batch, epochs, budget) / len(batch_sizes(n, batch_size, last_batch)))


def mini_batches(train: Split, m: int, rng: np.random.Generator, last_batch: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of mini-batches, drawn without replacement in a fresh random order. The inputs of
    each batch are gathered when it is drawn, rather than copying all inputs in shuffled order
    every epoch (313 MB for MNIST in float64, a large share of an epoch's time); the targets, a
    few numbers per input, are copied once in shuffled order and sliced, which costs less than a
    gather per batch."""
    order = rng.permutation(len(train))
    targets = train.Y.take(order, axis=0)
    for start, stop in batch_bounds(len(train), m, last_batch):
        yield train.X.take(order[start:stop], axis=0), targets[start:stop]  # take: a little faster than X[rows]


@cache
def blas() -> ThreadpoolController:
    """The BLAS libraries of this process (NumPy's and SciPy's, loaded with harness.network), found
    once: a search goes through every loaded library, milliseconds once MLflow is imported."""
    return ThreadpoolController()


# inputs per product when evaluating: a chunk's activations stay in the core's cache, and on
# MNIST's splits its outputs are bit for bit those of one product over the whole split with
# OpenBLAS's SkylakeX kernels as with its Haswell ones (at 768, SkylakeX's give other last bits;
# tests/test_train.py checks both where the CPU has them)
EVAL_CHUNK = 1536


class Evaluator:
    """Cost (eq. 6) on each whole split, and accuracy where the task is classification, for the
    network as it is when called. The outputs of a split are computed EVAL_CHUNK inputs at a time
    into one array per split, made once per run, then costed in one sum over the whole split as a
    whole-split product's outputs would be: the metrics are the same numbers, bit for bit, as
    `network.feedforward` on the whole split on one BLAS thread. `seconds` adds up the time of
    every evaluation."""

    def __init__(self, network: Network, data: Dataset):
        self.network, self.task, self.seconds = network, data.task, 0.0
        splits = [(name, split) for name, split in (("train", data.train), ("validation", data.validation),
                                                     ("test", data.test)) if len(split)]
        self.outputs = [(name, split, split.labels, np.empty((network.sizes[-1], len(split)), network.dtype, order="F"))
                        for name, split in splits]
        chunk = min(EVAL_CHUNK, max(len(split) for _, split in splits))
        self.hidden = [np.empty((n, chunk), network.dtype, order="F") for n in network.sizes[1:-1]]

    def __call__(self, train_split: bool = True) -> dict:
        """The metrics of every split, or of every split but the training one where there are others."""
        start, metrics = time.perf_counter(), {}
        with blas().limit(limits=1):
            for name, split, labels, out in self.outputs if train_split else self.outputs[1:] or self.outputs:
                for first in range(0, len(split), EVAL_CHUNK):
                    last = min(first + EVAL_CHUNK, len(split))
                    self.network.feedforward_into(split.X[first:last], out[:, first:last], self.hidden)
                output = out.T  # one row per input
                metrics[f"{name}_cost"] = self.network.cost_function.total(output, split.Y) / len(split)
                if self.task == "classification" and name != "train":
                    metrics[f"{name}_accuracy"] = float(np.mean(np.argmax(output, axis=1) == labels))
        self.seconds += time.perf_counter() - start
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
    measure: Measurements = Measurements(),
    on_epoch: Callable[[int, dict, Series], None] = lambda epoch, metrics, series: None,
    budget: Budget = Budget(),
) -> Result:
    """Train `network` in place and return its per-epoch history; stop early if it diverges.
    With a `budget`, train for its updates or inputs seen instead of `epochs`.

    After each epoch, `on_epoch(epoch, metrics, series)` gets that epoch's metrics and the per-step
    measurements made during it: with an evaluation schedule (`measure.eval_every`,
    `measure.eval_per_decade`) these include every split's cost and accuracy after the scheduled
    updates, under `names.by_update(metric)`, and at update 0 with epoch 0. With
    `measure.train_split_every` = k > 1 the training split is left out of all but every k-th of
    these evaluations and of the epochs' (`measure.train_split_due`); where it is left out, a
    divergence is judged on the validation cost (the test cost without a validation split).
    `train_time` counts the updates and the sampling only, `eval_time` the evaluations of the splits."""
    data = data.astype(network.dtype)  # float32 stays float32: no array of the run is upcast
    n = len(data.train)
    result = Result("finished")
    steps = examples = 0
    train_time = 0.0
    probe_rng = rng.spawn(1)[0] if measure.noise_scale_every else None  # leaves `rng`'s draws as they are
    total = planned_updates(n, batch_size, last_batch, epochs, budget)
    last_epoch = planned_epochs(n, batch_size, last_batch, epochs, budget)
    scheduled = eval_schedule(measure, total)
    train_split_at_epoch, train_split_at_update = train_split_due(measure, scheduled, last_epoch)
    evaluate = Evaluator(network, data)

    def evaluate_all(epoch: int) -> dict:
        metrics = evaluate(train_split_at_epoch(epoch))
        if measure.grad_norm:
            metrics["grad_norm"] = gradient_norm(network, data.train.X, data.train.Y)
        return metrics

    def record(epoch: int, metrics: dict, series: Series) -> None:
        metrics.update(steps=steps, examples=examples, train_time=train_time, eval_time=evaluate.seconds)
        result.history.append(metrics)
        for name, points in series.items():
            result.series.setdefault(name, []).extend(points)
        on_epoch(epoch, metrics, series)

    def measure_step(X: np.ndarray, Y: np.ndarray, series: Series) -> None:
        """The measurements due at update number `steps + 1`, before it is made."""
        due = lambda every: every and (steps + 1) % every == 0
        values = {}
        if due(measure.batch_cost_every):
            values["batch_cost"] = network.cost(X, Y)
        if due(measure.noise_scale_every):
            probe = probe_rng.choice(n, min(measure.noise_probe, n), replace=False)
            values["noise_scale"] = noise_scale(network, data.train.X[probe], data.train.Y[probe])
        for name, value in values.items():
            if value is not None and math.isfinite(value):  # never a NaN or inf in the record
                series.setdefault(name, []).append((steps + 1, value))

    def evaluate_scheduled(series: Series, metrics: dict | None = None) -> None:
        """Every split's cost and accuracy after update number `steps` (evaluation draws nothing
        from `rng`, so the run's trajectory is the same with or without a schedule)."""
        for name, value in (metrics or evaluate(steps in train_split_at_update)).items():
            if math.isfinite(value):  # never a NaN or inf in the record
                series.setdefault(names.by_update(name), []).append((steps, value))

    measuring = measure.batch_cost_every or measure.noise_scale_every
    threads = 1 if batch_size != "full" and batch_size < SHARED_BATCH else None  # None: as they are
    errors_ignored = dict(over="ignore", invalid="ignore", under="ignore", divide="ignore")
    with np.errstate(**errors_ignored):
        initial = evaluate_all(0)
        series: Series = {}
        if scheduled:
            evaluate_scheduled(series, {k: v for k, v in initial.items() if k != names.GRAD_NORM})
        record(0, initial, series)
    for epoch in range(1, last_epoch + 1):
        series: Series = {}
        start, measure_time = time.perf_counter(), 0.0
        full = [(data.train.X, data.train.Y)] if batch_size == "full" else None
        with np.errstate(**errors_ignored), blas().limit(limits=threads):
            for X, Y in full or mini_batches(data.train, batch_size, rng, last_batch):
                if measuring:
                    measure_start = time.perf_counter()
                    measure_step(X, Y, series)
                    measure_time += time.perf_counter() - measure_start
                network.step(X, Y, lr)
                steps, examples = steps + 1, examples + len(X)
                if steps in scheduled:
                    evaluate_start = time.perf_counter()
                    evaluate_scheduled(series)
                    measure_time += time.perf_counter() - evaluate_start
                if steps == total:  # the budget ends here, possibly inside the epoch
                    break
        train_time += time.perf_counter() - start - measure_time
        with np.errstate(**errors_ignored):
            metrics = evaluate_all(epoch)
        judged = next(cost for cost in (names.TRAIN_COST, names.VALIDATION_COST, names.TEST_COST) if cost in metrics)
        exploded = diverged(metrics[judged], initial[judged], divergence_ratio)
        if exploded or not all(map(math.isfinite, metrics.values())):  # never a NaN or inf in the history
            result.status = "diverged"
            result.diverged_epoch = epoch
            break
        record(epoch, metrics, series)
    return result
