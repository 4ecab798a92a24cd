"""Datasets as arrays: inputs X (one row per example) and targets Y, split into train,
validation and test sets. Every split is fixed by the data config, never by the run's seed,
so runs that differ only in `seed` see the same data.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np

from . import memory
from .cache import user_cache
from .download import DownloadError, fetch
from .errors import ConfigError


IDX_CHUNK = 1 << 20  # bytes of an IDX file's data decompressed at a time


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
    # the digest of what the arrays were computed from, where that is far smaller than the arrays
    # (MNIST: its 8-bit images, 1/8 of the float64 bytes); hashing 440 MB per run would cost ~2%
    source_digest: str | None = None

    @property
    def n_in(self) -> int:
        return self.train.X.shape[1]

    @property
    def n_out(self) -> int:
        return self.train.Y.shape[1]

    def digest(self) -> str:
        """sha256 of every array (or of their source), to tell which data a tracked run saw."""
        if self.source_digest is not None:
            return self.source_digest
        return array_digest(a for split in (self.train, self.validation, self.test) for a in (split.X, split.Y))

    def astype(self, dtype: str) -> "Dataset":
        cast = lambda s: Split(s.X.astype(dtype, copy=False), s.Y.astype(dtype, copy=False))
        return Dataset(self.name, self.task, cast(self.train), cast(self.validation), cast(self.test), self.source_digest)


def array_digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(memoryview(np.ascontiguousarray(a)))  # hashed in place, not copied
    return h.hexdigest()


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
        pixels, labels = digits_table()
        X, Y = pixels / 16.0, one_hot(labels, 10)
        return Dataset(self.name, "classification", *split_by_sizes(X, Y, self.validation, self.test, self.seed))


def digits_file() -> Path:
    """scikit-learn's `datasets/data/digits.csv.gz`, found without importing scikit-learn."""
    return Path(importlib.util.find_spec("sklearn").submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"


def digits_table() -> tuple[np.ndarray, np.ndarray]:
    """The 64 pixels (0 to 16) and the label of each image, read from the file as `load_digits`
    reads it: importing scikit-learn imports SciPy's statistics, which takes far longer than
    reading the file, in every process that starts a sweep or runs its jobs."""
    path = digits_file()
    if not path.exists():  # a scikit-learn that keeps the file elsewhere: its own loader
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.data, bunch.target
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1], table[:, -1].astype(int)


def fits(settings, width: int) -> None:
    """A synthetic dataset's inputs and targets (`width` float64 numbers per example) fit in memory."""
    n = settings.n + settings.validation + settings.test
    memory.check(f"data.n: {settings.n} (with data.validation={settings.validation}, data.test={settings.test})",
                 n * width * 8, f"{n:,} examples of {width} numbers each")


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
        fits(self, self.n_in + self.n_out)
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
        fits(self, self.n_in + self.n_classes)
        rng = np.random.default_rng(self.seed)
        centres = 3 * rng.standard_normal((self.n_classes, self.n_in))
        labels = rng.integers(self.n_classes, size=self.n + self.validation + self.test)
        X = centres[labels] + self.spread * rng.standard_normal((len(labels), self.n_in))
        Y = one_hot(labels, self.n_classes)
        return Dataset(self.name, "classification", *split_by_sizes(X, Y, self.validation, self.test, self.seed))


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The unsigned bytes in a gzipped IDX file: 0, 0, type 0x08, ndim, then ndim big-endian
    uint32 sizes, then the data in row-major order. Raises ValueError naming the file if it is not
    one. The header is read first and the data streamed into an array of the size it declares, so
    a file that decompresses to more than that is refused after one byte too many."""
    start = 4 + 4 * ndim
    try:
        with gzip.open(path) as file:
            header = file.read(start)
            if len(header) < start or header[:4] != bytes((0, 0, 0x08, ndim)):
                raise ValueError(f"{path} is not an IDX file of unsigned bytes with {ndim} dimensions "
                                 f"(its magic number is 0x{header[:4].hex()}, expected 0x000008{ndim:02x})")
            shape = tuple(int(size) for size in np.frombuffer(header, ">u4", ndim, offset=4))
            try:
                memory.check(f"{path}, whose header says {shape},", math.prod(shape), "its data")
            except ConfigError as error:
                raise ValueError(str(error)) from None
            data, filled = np.empty(math.prod(shape), np.uint8), 0
            while filled < len(data):
                read = file.readinto(memoryview(data)[filled:filled + IDX_CHUNK])
                if not read:
                    raise ValueError(f"{path} holds {filled} bytes of data, its header says {shape}")
                filled += read
            if file.read(1):
                raise ValueError(f"{path} holds more than the {len(data)} bytes of data its header says {shape}")
    except (gzip.BadGzipFile, EOFError) as error:
        raise ValueError(f"{path} is not a gzip file ({error})") from error
    return data.reshape(shape)


def cache_root() -> Path:
    """The folder holding one subfolder of files per dataset when `data.root` is null:
    $HARNESS_DATA if set, else harness/ in the user's cache ($XDG_CACHE_HOME or ~/.cache)."""
    if os.environ.get("HARNESS_DATA"):
        return Path(os.environ["HARNESS_DATA"]).expanduser()
    return user_cache()


@dataclass
class Mnist:
    """LeCun, Cortes and Burges' 28×28 handwritten digits, pixels scaled to [0, 1], split as in
    Nielsen's book: the first 50,000 of the 60,000 training images train, the last 10,000
    validate, the 10,000 t10k images test. `root` is the folder holding the four gzipped IDX
    files (null: cache_root()/NAME); missing files are downloaded when `download` is true.
    `train_size` keeps only the first that many training inputs (null: all 50,000)."""

    name: str = "mnist"
    root: Optional[str] = None
    download: bool = True
    train_size: Optional[int] = None

    FILES: ClassVar = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    MIRRORS: ClassVar = ("https://storage.googleapis.com/cvdf-datasets/mnist/",
                         "https://ossci-datasets.s3.amazonaws.com/mnist/")
    # sha256 of the original files as the mirrors serve them (TensorFlow Datasets pins the same);
    # they check downloads only: a copy gzipped again holds the same images under other bytes
    SHA256: ClassVar = {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }
    TRAIN: ClassVar = 50_000

    def load(self) -> Dataset:
        if self.train_size is not None and not 1 <= self.train_size <= self.TRAIN:
            raise ConfigError(f"data.train_size: {self.train_size} must be null or an integer from 1 to {self.TRAIN}")
        folder = self.folder()
        self.fetch_missing(folder)
        try:
            train_X, test_X = (read_idx(folder / name, 3) for name in self.FILES[::2])
            train_y, test_y = (read_idx(folder / name, 1) for name in self.FILES[1::2])
        except ValueError as error:
            raise ConfigError(f"data.root: {error}; replace the file or delete it to download it again") from error
        if (train_X.shape[1:] != (28, 28) or test_X.shape[1:] != (28, 28) or len(train_X) != len(train_y)
                or len(test_X) != len(test_y) or len(train_X) <= self.TRAIN):
            raise ConfigError(f"data.root: {folder} does not hold {self.name}: images {train_X.shape} and "
                              f"{test_X.shape}, labels {train_y.shape} and {test_y.shape}")
        for name, labels in zip(self.FILES[1::2], (train_y, test_y)):
            if labels.max() > 9:
                raise ConfigError(f"data.root: {folder / name} holds the label {labels.max()}; "
                                  f"{self.name} labels are 0 to 9")
        X = lambda images: images.reshape(len(images), -1) / 255.0
        Y = lambda labels: one_hot(labels, 10)
        n = self.train_size or self.TRAIN
        source = array_digest([train_X[:n], train_y[:n], train_X[self.TRAIN:], train_y[self.TRAIN:], test_X, test_y])
        return Dataset(self.name, "classification", Split(X(train_X[:n]), Y(train_y[:n])),
                       Split(X(train_X[self.TRAIN:]), Y(train_y[self.TRAIN:])), Split(X(test_X), Y(test_y)), source)

    def folder(self) -> Path:
        return Path(self.root).expanduser() if self.root else cache_root() / self.name

    def fetch_missing(self, folder: Path) -> None:
        """Download the files not yet in `folder`, if that is allowed and possible."""
        where = f"data.root: {folder}" if self.root else f"data.root: null (so {folder})"
        if self.root and not folder.is_dir():
            raise ConfigError(f"{where} is not a folder; set data.root to the folder of the four .gz files")
        missing = [name for name in self.FILES if not (folder / name).is_file()]
        if not missing:
            return
        if not self.download:
            raise ConfigError(f"{where} lacks {', '.join(missing)}; put the files there or set data.download=true")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"{where} cannot be created ({error.strerror}); set data.root to a writable folder")
        if not os.access(folder, os.W_OK):
            raise ConfigError(f"{where} is not writable, so {', '.join(missing)} cannot be downloaded; "
                                f"set data.root to a writable folder or put the files there")
        for name in missing:
            try:
                fetch(name, folder, self.MIRRORS, self.SHA256[name])
            except DownloadError as error:
                raise ConfigError(f"data.download: {error}; or put the file in {folder} (data.root)") from error





@dataclass
class FashionMnist(Mnist):
    """Xiao, Rasul and Vollgraf's Zalando article images: the same format, sizes and split as MNIST."""

    name: str = "fashion_mnist"

    MIRRORS: ClassVar = ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                         "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")
    # sha256 of the files as the mirrors serve them (TensorFlow Datasets pins the same)
    SHA256: ClassVar = {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }


# the settings of each dataset, by the name that `data.name` and `data=NAME` use
DATASETS = {cls.name: cls for cls in (Digits, Linear, Blobs, Mnist, FashionMnist)}


def load(settings: dict) -> Dataset:
    """The dataset named by settings["name"], built from the rest of its settings."""
    dataset = DATASETS[settings["name"]](**settings).load()
    if not len(dataset.train):
        sizes = ", ".join(f"data.{key}={settings[key]}" for key in ("n", "train_size", "validation", "test") if key in settings)
        raise ConfigError(f"data: {dataset.name} has no training inputs left with {sizes}; "
                          f"give it more inputs or a smaller validation and test split")
    return dataset
