"""Every setting is checked before any work: one line naming the key and what it may be."""

import numpy as np
import pytest

from harness import compose
from harness.config import check, config_hash
from harness.data import Mnist
from harness.errors import ConfigError
from harness.job import build

from test_data import write_idx


@pytest.mark.parametrize("overrides, message", [
    (["+lrr=1"], "lrr: not a setting of the harness"),
    (["+model.hiden=[3]"], "model.hiden: not a setting of the harness"),
    (["+data.nn=3"], "data.nn: not a setting of the harness"),
    (["lr=inf"], "lr: inf must be a finite number > 0"),
    (["lr=1e400"], "lr: inf must be a finite number > 0"),
    (["lr=0"], "lr: 0.0 must be a finite number > 0"),
    (["seed=-1"], "seed: -1 must be an integer >= 0"),
    (["tracking.experiment=''"], "tracking.experiment: must name an MLflow experiment"),
    (["divergence_ratio=inf"], "divergence_ratio: inf must be a number > 1"),
    (["data.seed=-1"], "data.seed: -1 must be an integer >= 0"),
    (["data=blobs", "data.n_classes=0"], "data.n_classes: 0 must be an integer >= 1"),
    (["data=blobs", "data.validation=-5"], "data.validation: -5 must be an integer >= 0"),
    (["data=linear", "data.noise=-1"], "data.noise: -1.0 must be a finite number >= 0"),
    (["tracking.experiment=" + "x" * 501], "tracking.experiment: a name of 501 characters; MLflow takes at most 500"),
    (["tracking.uri=garbage"], "tracking.uri: 'garbage' is not a store the harness can use"),
    (["tracking.uri=file:///tmp/mlruns"], "tracking.uri: 'file:///tmp/mlruns' is not a store the harness can use"),
])
def test_a_setting_that_cannot_run_is_one_line_naming_its_key(overrides, message):
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        check(compose(overrides))


def test_a_named_study_is_a_choice_not_a_typo():
    check(compose(["+experiment=lr_sweep"]))


@pytest.mark.parametrize("overrides, message", [
    (["data=blobs", "data.n=0"], "data: blobs has no training inputs left with data.n=0"),
    (["data.test=5000"], "data: digits has no training inputs left with data.validation=250, data.test=5000"),
    (["data=blobs", "data.n=0", "batch_size=full"], "data: blobs has no training inputs left"),
])
def test_an_empty_training_split_names_the_data_settings_not_the_batch_size(overrides, message):
    with pytest.raises(ConfigError, match="^" + message):
        build(compose(overrides))


@pytest.mark.parametrize("overrides, message", [
    (["data=blobs", "data.n=1000000000000"], r"data.n: 1000000000000 \(with data.validation=200, data.test=200\) "
                                             r"needs at least 36.4 TiB of memory for 1,000,000,000,400 examples"),
    (["model.hidden=[100000,100000]"], r"model.hidden: \[100000, 100000\] needs at least 149 GiB of memory"),
])
def test_a_setting_too_big_for_the_memory_says_the_size_it_asks_for_before_allocating(overrides, message):
    with pytest.raises(ConfigError, match="^" + message + r".*; [\d.]+ [KMGT]?i?B is available$"):
        build(compose(overrides))


def test_a_label_above_9_names_the_file_and_the_label(tmp_path):
    images = np.zeros((50_001, 28, 28))
    labels = np.zeros(50_001)
    labels[7] = 12
    for name, array in zip(Mnist.FILES, (images, labels, images[:10], labels[:10] * 0)):
        write_idx(tmp_path / name, array)
    with pytest.raises(ConfigError, match=r"train-labels-idx1-ubyte.gz holds the label 12; mnist labels are 0 to 9"):
        Mnist(root=str(tmp_path), download=False).load()


def test_config_hash_ignores_where_the_run_is_tracked_and_where_data_lives():
    assert config_hash(compose()) == config_hash(compose(["tracking.uri=sqlite:///elsewhere.db", "tracking.experiment=x",
                                                          "blas_threads=1", "study.question=why"]))
    assert config_hash(compose(["data=mnist"])) == config_hash(compose(["data=mnist", "data.root=/somewhere"]))


def test_config_hash_changes_with_what_the_job_computes():
    assert len({config_hash(compose(o)) for o in ([], ["seed=1"], ["lr=1"], ["data.seed=1"])}) == 4


def test_lr_per_batch_size_without_an_entry_for_m_is_a_config_error():
    cfg = compose(["lr='${per_batch_size:${batch_size},{1: 0.5, 3: 1.0, 10: 3.0}}'", "batch_size=7"])
    with pytest.raises(ConfigError, match="batch_size: 7 has no entry in the per_batch_size table; allowed: 1, 3, 10"):
        check(cfg)
