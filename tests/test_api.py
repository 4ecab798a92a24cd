"""The Python API: compose a config from overrides and train it in-process."""

import numpy as np
import pytest

import harness
from harness.errors import ConfigError
from harness.data import Blobs
from harness.train import random_streams, train


def test_compose_applies_overrides_to_the_defaults():
    cfg = harness.compose(["lr=0.5", "data=blobs", "model.hidden=[7]"])
    assert (cfg.lr, cfg.data.name, list(cfg.model.hidden), cfg.batch_size) == (0.5, "blobs", [7], 10)


def test_train_from_overrides_equals_training_by_hand():
    result, network = harness.train_from_config(["data=blobs", "model.hidden=[8]", "lr=1.0", "epochs=3", "seed=5"])
    init, sampling = random_streams(5)
    by_hand = harness.Network.from_sizes([2, 8, 3], seed=init)
    expected = train(by_hand, Blobs().load(), 1.0, 10, 3, sampling)
    np.testing.assert_array_equal(network.parameters, by_hand.parameters)
    assert [e["train_cost"] for e in result.history] == [e["train_cost"] for e in expected.history]


def test_train_from_config_rejects_a_bad_setting_before_training():
    with pytest.raises(ConfigError, match="lr: -1.0 must be a finite number > 0"):
        harness.train_from_config(["lr=-1"])


@pytest.mark.slow
def test_tracked_training_records_the_run(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result, _ = harness.train_from_config(["data=linear", "model=linear", "lr=0.1", "epochs=2",
                                           f"tracking.uri={uri}", "measure.batch_cost_every=50"], track=True)
    client = mlflow.MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("harness").experiment_id])[0]
    assert run.data.tags["status"] == "finished" and run.data.params["lr"] == "0.1"
    assert run.data.metrics["train_cost"] == result.final["train_cost"]
    history = client.get_metric_history(run.info.run_id, "batch_cost")
    assert [m.step for m in history] == [step for step, _ in result.series["batch_cost"]]


def test_measurement_setting_out_of_range_is_one_clear_error():
    with pytest.raises(ConfigError, match="measure.noise_probe: 1 must be an integer >= 2"):
        harness.train_from_config(["measure.noise_probe=1"])
