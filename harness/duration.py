"""How long a job will train, before it starts: a few updates and an evaluation of a network of
the job's shape, timed on the job's own data and scaled to its epochs. A job expected to train
longer than `max_hours` is refused with one line naming the setting, so a mistyped `epochs`
does not run for years; the dry run and the first progress line say the estimate.

The estimate counts the updates and the evaluation after each epoch, not the optional
measurements (`measure.*`) nor the writes to the store.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig, OmegaConf

from .data import Dataset, Split
from . import memory
from .errors import ConfigError
from .network import Network
from .train import batch_sizes, mini_batches, planned_epochs

PROBE_ROWS = 1000  # at most this many inputs per timed update or evaluation, the rest scaled from them
_per_epoch: dict[str, float] = {}  # seconds per epoch, by what they depend on


def text(seconds: float) -> str:
    """`under a second`, `about 40 s`, `about 12 min`, `about 3.1 h`, `about 1.9e+08 years`."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"about {seconds / size:.2g} {unit}"
    return f"about {seconds:.0f} s" if seconds >= 1 else "under a second"


def typical(call, repeat: int = 3) -> float:
    """The median of `repeat` timings of `call()`, in seconds: on a busy machine the shortest is
    the exception."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeat // 2]


@dataclass(frozen=True)
class Sample:
    """What the timing needs of a dataset: its first training inputs and the sizes of its splits."""
    name: str
    X: np.ndarray
    Y: np.ndarray
    n_train: int
    n_evaluated: int  # inputs of every split, fed forward after each epoch


def sample(dataset: Dataset) -> Sample:
    n = len(dataset.train)
    return Sample(dataset.name, dataset.train.X[:PROBE_ROWS], dataset.train.Y[:PROBE_ROWS], n,
                  n + len(dataset.validation) + len(dataset.test))


def epoch_seconds(cfg: DictConfig, data: Sample) -> float:
    """Seconds of one epoch: its updates of m inputs, then the feedforward of every split."""
    n = data.n_train
    m = n if cfg.batch_size == "full" else cfg.batch_size
    updates = len(batch_sizes(n, cfg.batch_size, cfg.last_batch))
    model = OmegaConf.to_container(cfg.model, resolve=True)
    key = json.dumps([data.name, data.X.shape, data.Y.shape, n, data.n_evaluated, m, updates, model], sort_keys=True)
    if key not in _per_epoch:
        sizes = [data.X.shape[1], *model["hidden"], data.Y.shape[1]]
        memory.check_network(model["hidden"], sizes, m, np.dtype(model["dtype"]).itemsize)
        network = Network.from_sizes(sizes, dtype=model["dtype"],
                                     init=model["init"], activation=model["activation"], output=model["output"],
                                     cost=model["cost"])
        # the mini-batches of the first inputs, drawn and stepped on as training does (a batch
        # larger than them is timed on them all and scaled)
        sample = Split(data.X.astype(model["dtype"]), data.Y.astype(model["dtype"]))
        rows = min(m, len(sample))
        batches = math.ceil(len(sample) / rows)
        rng = np.random.default_rng(0)
        with np.errstate(all="ignore"):
            epoch = typical(lambda: [network.step(X, Y, cfg.lr) for X, Y in mini_batches(sample, rows, rng, "keep")])
            evaluation = typical(lambda: network.cost(sample.X, sample.Y)) * data.n_evaluated / len(sample)
        _per_epoch[key] = updates * epoch / batches * m / rows + evaluation
    return _per_epoch[key]


def check(cfg: DictConfig, data: Sample) -> float:
    """The job's expected seconds of training; ConfigError if that is beyond `max_hours`."""
    epochs = planned_epochs(data.n_train, cfg.batch_size, cfg.last_batch, cfg.epochs, cfg.budget)
    seconds = epochs * epoch_seconds(cfg, data)
    if cfg.max_hours is not None and seconds > cfg.max_hours * 3600:
        raise ConfigError(f"max_hours: {epochs} epochs would train for {text(seconds)} (timed on a few "
                          f"updates), beyond max_hours={cfg.max_hours:g}; lower epochs or the budget, or raise max_hours "
                          f"(max_hours=null: no limit)")
    return seconds
