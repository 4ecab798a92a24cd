"""The pieces of sweep tracking that need no command line: config hashes, run names, choices, processes."""

import signal
import subprocess
import sys

import pytest

from harness import compose
from harness.__main__ import unknown_choice
from harness.config import ConfigError, check
from harness.sweep import run_name
from harness.tracking import config_hash, process_alive, process_start


def config(*overrides):
    return compose(overrides)


def test_config_hash_ignores_where_the_run_is_tracked_and_where_data_lives():
    assert config_hash(config()) == config_hash(config("tracking.uri=sqlite:///elsewhere.db", "tracking.experiment=x",
                                                       "blas_threads=1"))
    assert config_hash(config("data=mnist")) == config_hash(config("data=mnist", "data.root=/somewhere"))


def test_config_hash_changes_with_the_seed():
    assert config_hash(config("seed=0")) != config_hash(config("seed=1"))


def test_run_name_keeps_what_the_job_computes():
    assert run_name(["lr=3", "launcher=parallel", "+experiment=lr_sweep", "data.root=/d", "seed=0"]) == "lr=3,seed=0"


def test_unknown_group_choice_is_one_line_naming_the_options():
    assert unknown_choice(["-m", "lr=1", "model=default,big"]) == "model: 'big' is not one of default, linear"
    assert unknown_choice(["data=digits", "hydra/launcher=joblib"]) is None


def test_lr_per_batch_size_without_an_entry_for_m_is_a_config_error():
    cfg = config("lr='${per_batch_size:${batch_size},{1: 0.5, 3: 1.0, 10: 3.0}}'", "batch_size=7")
    with pytest.raises(ConfigError, match="batch_size: 7 has no entry in the per_batch_size table; allowed: 1, 3, 10"):
        check(cfg)


def test_a_finished_process_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    start = process_start(child.pid)
    assert process_alive(child.pid, start)
    child.kill()
    child.wait()
    assert not process_alive(child.pid, start)


def test_short_epochs_are_written_together_and_every_point_is_kept(workdir, monkeypatch):
    from mlflow.tracking import MlflowClient

    import harness

    writes = []
    log_batch = MlflowClient.log_batch
    monkeypatch.setattr(MlflowClient, "log_batch", lambda self, run_id, **kw: writes.append(run_id) or log_batch(self, run_id, **kw))
    harness.train_from_config(["data=blobs", "data.n=100", "epochs=40", "model.hidden=[4]"], track=True)
    client = MlflowClient()
    [run] = client.search_runs([client.get_experiment_by_name("harness").experiment_id])
    assert [point.step for point in client.get_metric_history(run.info.run_id, "train_cost")] == list(range(41))
    assert len(writes) < 5  # 41 epochs of a few ms each: one write at the end, not one per epoch


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost Killed, as intended
def test_a_signal_whose_killed_was_lost_ends_the_run_killed_at_the_next_epoch(workdir, monkeypatch):
    import weakref

    from mlflow.tracking import MlflowClient

    import harness
    from harness import tracking

    monkeypatch.setattr(tracking, "received", None)
    log_epoch = tracking.Tracker.log_epoch

    def signal_during_a_weakref_callback_at_epoch_2(self, epoch, metrics, series=None):
        if epoch == 2:  # Python prints what the handler raises there, and carries on
            target = type("Target", (), {})()
            ref = weakref.ref(target, lambda _: tracking._raise_killed(signal.SIGTERM, None))  # noqa: F841
            del target
        log_epoch(self, epoch, metrics, series)

    monkeypatch.setattr(tracking.Tracker, "log_epoch", signal_during_a_weakref_callback_at_epoch_2)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"  # its own store: MLflow keeps one per URI for the process
    with pytest.raises(tracking.Killed):
        harness.train_from_config(["data=blobs", "data.n=100", "epochs=5", "model.hidden=[4]", f"tracking.uri={uri}"],
                                  track=True)
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("harness").experiment_id])
    assert run.info.status == "KILLED" and run.data.tags["error"] == "killed by SIGTERM"
    assert [point.step for point in client.get_metric_history(run.info.run_id, "train_cost")] == [0, 1, 2]


def test_a_signal_during_a_metrics_write_lets_it_finish_then_ends_the_run_killed(workdir, monkeypatch):
    from mlflow.tracking import MlflowClient

    import harness
    from harness import tracking

    monkeypatch.setattr(tracking, "received", None)
    monkeypatch.setattr(tracking.Tracker, "FLUSH_SECONDS", 0.0)  # one write per epoch
    log_batch = MlflowClient.log_batch
    finished = []

    def signal_in_the_middle_of_epoch_1s_write(self, run_id, **kwargs):
        if not any(metric.step == 1 for metric in kwargs.get("metrics", [])):
            return log_batch(self, run_id, **kwargs)
        tracking._raise_killed(signal.SIGTERM, None)  # the handler, run between two bytecodes of the call
        result = log_batch(self, run_id, **kwargs)
        finished.append(run_id)
        return result

    monkeypatch.setattr(MlflowClient, "log_batch", signal_in_the_middle_of_epoch_1s_write)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    with pytest.raises(tracking.Killed):
        harness.train_from_config(["data=blobs", "data.n=100", "epochs=5", "model.hidden=[4]", f"tracking.uri={uri}"],
                                  track=True)
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("harness").experiment_id])
    assert finished == [run.info.run_id]
    assert run.info.status == "KILLED" and run.data.tags["error"] == "killed by SIGTERM"
    assert [point.step for point in client.get_metric_history(run.info.run_id, "train_cost")] == [0, 1]


def test_a_tracked_call_after_one_stopped_by_a_signal_runs(workdir, monkeypatch):
    import harness
    from harness import tracking

    monkeypatch.setattr(tracking, "received", signal.SIGINT)  # an earlier call in this process was stopped
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    result, _ = harness.train_from_config(["data=blobs", "data.n=100", "epochs=2", "model.hidden=[4]",
                                           f"tracking.uri={uri}"], track=True)
    assert result.status == "finished"
