"""Datasets: the IDX parser on files written here, MNIST's split on the real files, where files are
looked for, and splits fixed by the data settings alone."""

import gzip
import struct
import tracemalloc

import numpy as np
import pytest

from conftest import MNIST
from harness import compose
from harness.errors import ConfigError
from harness.data import Blobs, Digits, Linear, Mnist, digits_table, read_idx

needs_mnist = pytest.mark.skipif(not MNIST.is_dir(), reason=f"no MNIST files in {MNIST}")


def write_idx(path, array: np.ndarray, magic_type: int = 0x08, ndim: int | None = None):
    """A gzipped IDX file as LeCun's page describes it, written independently of the parser."""
    ndim = array.ndim if ndim is None else ndim
    header = bytes((0, 0, magic_type, ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))
    return path


def test_idx_file_reads_back_the_array_written(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, size=(3, 4, 5)).astype(np.uint8)
    assert np.array_equal(read_idx(write_idx(tmp_path / "x.gz", array), 3), array)


def test_idx_file_with_other_dimensions_is_rejected(tmp_path):
    path = write_idx(tmp_path / "labels.gz", np.arange(10))
    with pytest.raises(ValueError, match="labels.gz is not an IDX file of unsigned bytes with 3 dimensions"):
        read_idx(path, 3)


def test_idx_file_of_other_type_is_rejected(tmp_path):
    path = write_idx(tmp_path / "floats.gz", np.arange(10), magic_type=0x0D)
    with pytest.raises(ValueError, match="magic number is 0x00000d01"):
        read_idx(path, 1)


def test_idx_file_shorter_than_its_header_is_rejected(tmp_path):
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(bytes((0, 0, 8, 1)) + struct.pack(">I", 10) + bytes(9)))
    with pytest.raises(ValueError, match=r"holds 9 bytes of data, its header says \(10,\)"):
        read_idx(path, 1)


def test_idx_file_with_more_data_than_its_header_says_is_refused_without_decompressing_it_all(tmp_path):
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb") as file:
        file.write(bytes((0, 0, 8, 1)) + struct.pack(">I", 10))
        for _ in range(64):
            file.write(bytes(1 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"holds more than the 10 bytes of data its header says \(10,\)"):
            read_idx(path, 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # the file decompresses to 64 MiB


def test_idx_file_whose_header_asks_for_more_than_the_memory_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.gz"
    path.write_bytes(gzip.compress(bytes((0, 0, 8, 3)) + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1)))
    with pytest.raises(ValueError, match=r"huge.gz, whose header says \(4294967295, 4294967295, 4294967295\), "
                                         r"needs at least .* of memory for its data; .* is available"):
        read_idx(path, 3)


def test_file_that_is_not_gzip_is_rejected(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(bytes((0, 0, 8, 1, 0, 0, 0, 1, 7)))
    with pytest.raises(ValueError, match="plain.gz is not a gzip file"):
        read_idx(path, 1)


def test_malformed_file_in_root_stops_loading_naming_root(tmp_path):
    for name in Mnist.FILES:
        write_idx(tmp_path / name, np.zeros((2, 28, 28) if "images" in name else 2))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(ConfigError, match="data.root: .*t10k-labels-idx1-ubyte.gz is not a gzip file"):
        Mnist(root=str(tmp_path), download=False).load()


@needs_mnist
def test_mnist_splits_as_in_the_book():
    data = Mnist(root=str(MNIST)).load()
    assert (len(data.train), len(data.validation), len(data.test)) == (50_000, 10_000, 10_000)
    assert (data.n_in, data.n_out) == (784, 10)
    # the first labels of the training and test files, as published with MNIST
    assert list(data.train.labels[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert list(data.test.labels[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    labels = read_idx(MNIST / "train-labels-idx1-ubyte.gz", 1)
    assert np.array_equal(data.validation.labels, labels[50_000:])


@needs_mnist
def test_mnist_pixels_are_scaled_to_unit_interval_and_targets_one_hot():
    data = Mnist(root=str(MNIST)).load()
    pixels = read_idx(MNIST / "t10k-images-idx3-ubyte.gz", 3)
    assert data.test.X.dtype == np.float64
    assert np.array_equal(data.test.X * 255, pixels.reshape(10_000, 784))
    assert set(np.unique(data.test.Y)) == {0.0, 1.0} and np.all(data.test.Y.sum(axis=1) == 1)
    assert np.array_equal(data.test.labels, read_idx(MNIST / "t10k-labels-idx1-ubyte.gz", 1))


@needs_mnist
def test_mnist_train_size_keeps_the_first_training_inputs():
    full, part = Mnist(root=str(MNIST)).load(), Mnist(root=str(MNIST), train_size=100).load()
    assert np.array_equal(part.train.X, full.train.X[:100])
    assert np.array_equal(part.validation.X, full.validation.X)


def test_files_are_looked_for_under_harness_data(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path))
    assert Mnist().folder() == tmp_path / "mnist"


def test_files_default_to_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert Mnist().folder() == tmp_path / "harness" / "mnist"


def test_data_group_composes_mnist_settings():
    cfg = compose(["data=fashion_mnist", "data.root=/data/f"])
    assert (cfg.data.name, cfg.data.root, cfg.data.download, cfg.data.train_size) == ("fashion_mnist", "/data/f", True, None)


@pytest.mark.parametrize("settings", [Digits, Linear, Blobs])
def test_same_data_seed_gives_identical_splits(settings):
    a, b = settings(seed=3).load(), settings(seed=3).load()
    for split_a, split_b in zip((a.train, a.validation, a.test), (b.train, b.validation, b.test)):
        assert np.array_equal(split_a.X, split_b.X) and np.array_equal(split_a.Y, split_b.Y)


@pytest.mark.parametrize("settings", [Digits, Linear, Blobs])
def test_other_data_seed_gives_other_splits(settings):
    assert settings(seed=3).load().digest() != settings(seed=4).load().digest()


def test_digits_are_the_images_and_labels_of_scikit_learns_loader():
    from sklearn.datasets import load_digits

    pixels, labels = digits_table()
    bunch = load_digits()
    assert pixels.dtype == bunch.data.dtype and np.array_equal(pixels, bunch.data)
    assert np.array_equal(labels, bunch.target)


def test_digits_come_from_scikit_learns_loader_where_its_file_is_elsewhere(monkeypatch, tmp_path):
    pixels, labels = digits_table()
    monkeypatch.setattr("harness.data.digits_file", lambda: tmp_path / "moved.csv.gz")
    moved_pixels, moved_labels = digits_table()
    assert np.array_equal(moved_pixels, pixels) and np.array_equal(moved_labels, labels)


def test_digits_split_sizes_add_up_to_all_images():
    data = Digits(validation=200, test=300).load()
    assert (len(data.train), len(data.validation), len(data.test)) == (1797 - 500, 200, 300)


@pytest.mark.parametrize("settings", [Linear, Blobs])
def test_synthetic_split_sizes_add_up(settings):
    data = settings(n=500, validation=70, test=30).load()
    assert (len(data.train), len(data.validation), len(data.test)) == (500, 70, 30)


def test_digest_differs_between_datasets():
    digests = {settings().load().digest() for settings in (Digits, Linear, Blobs)}
    assert len(digests) == 3
