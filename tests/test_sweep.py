"""Sweeps through the real command line: grouping, failures, divergence, resume, parallel
workers, signals, bad input, named studies. The store is read back with MLflow's client."""

import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from conftest import REPO, harness

pytestmark = pytest.mark.slow

# a job of the sweep that raises: harness's own command line with the training of lr=0.02 broken
FAILING = """
import harness.job
from harness.__main__ import cli

real_fit = harness.job.fit

def fit(cfg, *args, **kwargs):
    if cfg.lr == 0.02:
        raise RuntimeError("injected failure")
    return real_fit(cfg, *args, **kwargs)

harness.job.fit = fit
cli()
"""
LINEAR = ("data=linear", "model=linear", "epochs=3")  # lr=10 diverges on it, lr=0.01 converges


def client(folder) -> MlflowClient:
    return MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")


def runs(folder, experiment="harness"):
    store = client(folder)
    return store.search_runs([store.get_experiment_by_name(experiment).experiment_id], max_results=1000)


def children(folder, experiment="harness"):
    return [run for run in runs(folder, experiment) if run.data.tags.get("role") != "sweep"]


def by_lr(folder) -> dict:
    return {run.data.params["lr"]: run for run in children(folder)}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One sweep of three jobs: lr=0.01 finishes, lr=0.02 raises, lr=10 diverges."""
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "failing_harness.py").write_text(FAILING)
    result = harness("-m", "lr=0.01,0.02,10", *LINEAR, cwd=folder, check=False, module="failing_harness")
    return folder, result


def test_sweep_is_one_parent_run_with_a_child_per_job(sweep):
    folder, _ = sweep
    all_runs = runs(folder)
    parents = [run for run in all_runs if run.data.tags.get("role") == "sweep"]
    assert len(parents) == 1 and "lr" not in parents[0].data.params
    assert sorted(run.data.tags["mlflow.parentRunId"] for run in children(folder)) == [parents[0].info.run_id] * 3


def test_child_runs_are_named_by_their_overrides(sweep):
    folder, _ = sweep
    names = sorted(run.info.run_name for run in children(folder))
    assert names == [f"lr={lr},data=linear,model=linear,epochs=3" for lr in ("0.01", "0.02", "10")]


def test_failing_job_is_failed_with_its_error_and_the_sweep_goes_on(sweep):
    folder, result = sweep
    runs_by_lr = by_lr(folder)
    assert runs_by_lr["0.02"].info.status == "FAILED"
    assert runs_by_lr["0.02"].data.tags["error"] == "RuntimeError: injected failure"
    assert runs_by_lr["10.0"].info.status == "FINISHED"  # the job launched after the failed one ran
    assert result.returncode == 1 and "1 of 3 jobs did not finish" in result.stderr


def test_diverged_job_is_tagged_and_counted_in_the_summary(sweep):
    folder, result = sweep
    diverged = by_lr(folder)["10.0"]
    assert (diverged.info.status, diverged.data.tags["status"]) == ("FINISHED", "diverged")
    assert "3 jobs: 1 finished, 1 diverged, 1 failed, 0 killed, 0 skipped" in result.stdout


def test_summary_has_a_row_per_job_and_the_ui_command(sweep):
    folder, result = sweep
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("lr=")]
    assert [(row[0], row[-1]) for row in rows] == [("lr=0.01,data=linear,model=linear,epochs=3", "finished"),
                                                   ("lr=0.02,data=linear,model=linear,epochs=3", "failed"),
                                                   ("lr=10,data=linear,model=linear,epochs=3", "diverged")]
    assert float(rows[0][1]) == pytest.approx(by_lr(folder)["0.01"].data.metrics["train_cost"], rel=1e-3)
    assert f"mlflow ui --backend-store-uri sqlite:///{folder / 'mlflow.db'}" in result.stdout


def test_run_records_commit_config_hash_and_sweep_tags(sweep):
    folder, _ = sweep
    tags = by_lr(folder)["0.01"].data.tags
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert tags["git_commit"] == commit
    assert len(tags["config_hash"]) == 64
    assert tags["overrides"] == "lr=0.01 data=linear model=linear epochs=3"


def test_final_weights_read_back_without_pickle(sweep, tmp_path):
    folder, _ = sweep
    run = by_lr(folder)["0.01"]
    path = client(folder).download_artifacts(run.info.run_id, "weights.npz", str(tmp_path))
    with np.load(path, allow_pickle=False) as weights:
        assert weights["W1"].shape == (1, 10) and weights["b1"].shape == (1,)  # linear data: 10 inputs, 1 output


def test_dataset_input_carries_the_data_digest(sweep):
    from harness.data import Linear

    folder, _ = sweep
    inputs = by_lr(folder)["0.01"].inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("linear", Linear().load().digest()[:32])]


def test_resume_reruns_only_failed_jobs_and_never_duplicates_finished_ones(tmp_path):
    (tmp_path / "failing_harness.py").write_text(FAILING)
    harness("-m", "lr=0.01,0.02", *LINEAR, cwd=tmp_path, check=False, module="failing_harness")
    result = harness("-m", "lr=0.01,0.02", *LINEAR, cwd=tmp_path)
    statuses = sorted((run.data.params["lr"], run.info.status) for run in children(tmp_path))
    assert statuses == [("0.01", "FINISHED"), ("0.02", "FAILED"), ("0.02", "FINISHED")]
    assert "2 jobs: 1 finished, 0 diverged, 0 failed, 0 killed, 1 skipped" in result.stdout


def test_resume_false_reruns_finished_jobs(tmp_path):
    harness("-m", "lr=0.01", *LINEAR, cwd=tmp_path)
    harness("-m", "lr=0.01", *LINEAR, "tracking.resume=false", cwd=tmp_path)
    assert [run.info.status for run in children(tmp_path)] == ["FINISHED", "FINISHED"]


def test_parallel_sweep_with_8_workers_tracks_every_job(tmp_path):
    result = harness("-m", "launcher=parallel", "hydra.launcher.n_jobs=8", "lr=0.5,1,2,3", "seed=0,1", "epochs=1",
                     cwd=tmp_path)
    assert "locked" not in result.stderr
    finished = [run for run in children(tmp_path) if run.info.status == "FINISHED"]
    assert len(finished) == 8 and len({run.data.tags["pid"] for run in finished}) > 1  # really in parallel workers


def wait_for_running_child(folder, timeout=60.0) -> str:
    """The id of a job's run once it is RUNNING and has logged an epoch. Polled with sqlite3, read
    only: an MLflow client here could race the job's creation of the store's tables."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with sqlite3.connect(f"file:{folder / 'mlflow.db'}?mode=ro", uri=True) as db:
                found = db.execute("select run_uuid from runs where status = 'RUNNING' "
                                   "and run_uuid in (select run_uuid from metrics) "
                                   "and run_uuid not in (select run_uuid from tags where key = 'role')").fetchall()
        except sqlite3.OperationalError:  # no store yet, or its tables are being created
            found = []
        if found:
            return found[0][0]
        time.sleep(0.5)
    raise AssertionError("no run started")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_marks_the_run_and_its_sweep_killed(tmp_path, signum):
    process = subprocess.Popen([sys.executable, "-m", "harness", "-m", "lr=0.5,3", "epochs=100000"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_running_child(tmp_path)
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    assert process.returncode == 128 + signum, stderr[-3000:]
    statuses = sorted((run.data.tags.get("role", "job"), run.info.status) for run in runs(tmp_path))
    assert statuses == [("job", "KILLED"), ("sweep", "KILLED")]


def test_run_left_running_by_sigkill_is_marked_killed_at_next_launch(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "harness", "epochs=100000"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    orphan = wait_for_running_child(tmp_path)
    process.kill()
    process.wait(timeout=30)
    assert client(tmp_path).get_run(orphan).info.status == "RUNNING"
    harness("epochs=1", cwd=tmp_path)
    run = client(tmp_path).get_run(orphan)
    assert run.info.status == "KILLED" and "ended without closing the run" in run.data.tags["error"]


@pytest.mark.parametrize("args, message", [
    (("lr=0.5,0",), "lr: 0.0 must be a finite number > 0"),
    (("batch_size=10,2000",), "batch_size: 2000 is larger than the 1297 training inputs"),
    (("+experiment=nope",), "experiment: 'nope' is not one of batch_size_sweep, critical_batch, gd_vs_sgd,"),
    (("data=digits,nope",), "data: 'nope' is not one of blobs, digits,"),
    (("lr=1,3", "hydra.sweeper.refine_rounds=-1"), "hydra.sweeper.refine_rounds: -1 must be an integer >= 0 (0: none)"),
])
def test_bad_job_in_a_sweep_stops_it_with_one_line_before_any_run(tmp_path, args, message):
    result = harness("-m", *args, "epochs=1", cwd=tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}")
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("where", ["repository root", "another directory"])
def test_named_study_runs_from_any_directory(tmp_path, where):
    cwd = REPO if where == "repository root" else tmp_path
    harness("-m", "+experiment=gd_vs_sgd", "seed=0", "lr=3", "budget.updates=2", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
            f"hydra.sweep.dir={tmp_path / 'multirun'}", cwd=cwd)
    assert sorted(run.data.params["batch_size"] for run in children(tmp_path, "gd_vs_sgd")) == ["10", "full"]
    assert [run.data.params["study.target_cost"] for run in children(tmp_path, "gd_vs_sgd")] == ["0.1", "0.1"]


def test_unreachable_tracking_server_fails_within_seconds(tmp_path, free_port):
    start = time.perf_counter()
    result = harness("epochs=1", f"tracking.uri=http://127.0.0.1:{free_port}", cwd=tmp_path, check=False)
    assert result.returncode == 2 and time.perf_counter() - start < 20
    assert result.stderr.strip().startswith(f"error: tracking.uri: cannot reach the MLflow server at http://127.0.0.1:{free_port}")


def test_ray_launcher_with_a_store_on_this_disk_is_refused_before_anything_runs(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="Ray's Hydra launcher (pip install -e '.[ray]')")
    result = harness("-m", "launcher=ray", "lr=0.5,3", "epochs=1", cwd=tmp_path, check=False)
    assert result.returncode == 2 and not (tmp_path / "mlflow.db").exists()
    assert result.stderr.strip().startswith("error: tracking.uri: sqlite:///mlflow.db is a store on one machine's disk")


def test_wrong_type_is_caught_by_the_schema_before_any_run(tmp_path):
    result = harness("-m", "epochs=1,abc", cwd=tmp_path, check=False)
    assert result.returncode == 2 and not (tmp_path / "mlflow.db").exists()
    assert result.stderr.strip() == "error: epochs: Value 'abc' of type 'str' could not be converted to Integer"
