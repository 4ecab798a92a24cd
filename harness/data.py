"""Datasets as arrays: inputs X (one row per example) and targets Y, split into train,
validation and test sets. Every split is fixed by the data config, never by the run's seed,
so runs that differ only in `seed` see the same data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    X: np.ndarray
    Y: np.ndarray

    def __len__(self) -> int:
        return len(self.X)

    @property
    def labels(self) -> np.ndarray:
        """Class indices of one-hot targets."""
        return np.argmax(self.Y, axis=1)


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # "classification" (one-hot Y) or "regression"
    train: Split
    validation: Split
    test: Split

    @property
    def n_in(self) -> int:
        return self.train.X.shape[1]

    @property
    def n_out(self) -> int:
        return self.train.Y.shape[1]

    def digest(self) -> str:
        """sha256 of every array, to tell which data a tracked run saw."""
        h = hashlib.sha256()
        for split in (self.train, self.validation, self.test):
            for a in (split.X, split.Y):
                h.update(str(a.shape).encode())
                h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def astype(self, dtype: str) -> "Dataset":
        cast = lambda s: Split(s.X.astype(dtype, copy=False), s.Y.astype(dtype, copy=False))
        return Dataset(self.name, self.task, cast(self.train), cast(self.validation), cast(self.test))


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    Y = np.zeros((len(labels), n_classes))
    Y[np.arange(len(labels)), labels] = 1.0
    return Y


def split_by_sizes(X: np.ndarray, Y: np.ndarray, validation: int, test: int, seed: int) -> tuple[Split, Split, Split]:
    """Shuffle once with the data seed, then take test, validation and the rest as train."""
    order = np.random.default_rng(seed).permutation(len(X))
    X, Y = X[order], Y[order]
    t, v = test, test + validation
    return Split(X[v:], Y[v:]), Split(X[t:v], Y[t:v]), Split(X[:t], Y[:t])


@dataclass
class Digits:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images), pixels scaled to [0, 1]."""

    name: str = "digits"
    validation: int = 250
    test: int = 250
    seed: int = 0

    def load(self) -> Dataset:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        X, Y = bunch.data / 16.0, one_hot(bunch.target, 10)
        return Dataset(self.name, "classification", *split_by_sizes(X, Y, self.validation, self.test, self.seed))


@dataclass
class Linear:
    """Linear regression y = x Aᵀ + c + noise: the closed-form case of least squares."""

    name: str = "linear"
    n: int = 1000
    n_in: int = 10
    n_out: int = 1
    noise: float = 0.1
    validation: int = 200
    test: int = 200
    seed: int = 0

    def load(self) -> Dataset:
        rng = np.random.default_rng(self.seed)
        X = rng.standard_normal((self.n + self.validation + self.test, self.n_in))
        A, c = rng.standard_normal((self.n_out, self.n_in)), rng.standard_normal(self.n_out)
        Y = X @ A.T + c + self.noise * rng.standard_normal((len(X), self.n_out))
        return Dataset(self.name, "regression", *split_by_sizes(X, Y, self.validation, self.test, self.seed))


@dataclass
class Blobs:
    """Gaussian clusters in n_in dimensions, one per class, centres drawn from N(0, 3²)."""

    name: str = "blobs"
    n: int = 1000
    n_in: int = 2
    n_classes: int = 3
    spread: float = 1.0
    validation: int = 200
    test: int = 200
    seed: int = 0

    def load(self) -> Dataset:
        rng = np.random.default_rng(self.seed)
        centres = 3 * rng.standard_normal((self.n_classes, self.n_in))
        labels = rng.integers(self.n_classes, size=self.n + self.validation + self.test)
        X = centres[labels] + self.spread * rng.standard_normal((len(labels), self.n_in))
        Y = one_hot(labels, self.n_classes)
        return Dataset(self.name, "classification", *split_by_sizes(X, Y, self.validation, self.test, self.seed))


# the settings of each dataset, by the name that `data.name` and `data=NAME` use
DATASETS = {cls.name: cls for cls in (Digits, Linear, Blobs)}


def load(settings: dict) -> Dataset:
    """The dataset named by settings["name"], built from the rest of its settings."""
    return DATASETS[settings["name"]](**settings).load()
