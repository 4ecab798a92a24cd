"""End to end through the real command line, as a user runs it."""

import sqlite3

import pytest
from mlflow.tracking import MlflowClient

from conftest import harness

pytestmark = pytest.mark.slow


def test_sweep_tracks_one_finished_run_per_job_and_draws_the_figure(workdir):
    harness("-m", "lr=0.5,3", "batch_size=10,full", "epochs=3", cwd=workdir)
    db = sqlite3.connect(workdir / "mlflow.db")
    statuses = db.execute("select status from runs where run_uuid in "
                          "(select run_uuid from params where key = 'lr')").fetchall()
    assert sorted(s for (s,) in statuses) == ["FINISHED"] * 4
    steps = db.execute("select run_uuid, count(*) from metrics where key = 'train_cost' group by run_uuid").fetchall()
    assert [count for _, count in steps] == [4] * 4  # epochs 0 (initial) to 3

    harness("convergence", "--experiment", "harness", "--out", "figure.png", cwd=workdir, module="analysis")
    assert (workdir / "figure.png").stat().st_size > 10_000


def test_bad_setting_stops_with_one_line_before_any_run(workdir):
    result = harness("lr=0", cwd=workdir, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: lr: 0.0 must be a finite number > 0"
    assert not (workdir / "mlflow.db").exists()


def test_a_single_run_prints_its_epochs_at_most_once_a_second_and_the_last(workdir):
    lines = harness("epochs=5", cwd=workdir).stdout.splitlines()  # digits epochs take milliseconds
    assert [line.split(":")[0] for line in lines[:3]] == ["epoch 0/5", "epoch 5/5", "finished"]


def test_a_sweep_prints_a_line_per_job_into_each_jobs_log_file(workdir):
    result = harness("-m", "lr=1,3", "epochs=2", cwd=workdir)
    assert "[1/2] lr=1,epochs=2 finished: train_cost" in result.stdout
    assert "[2/2] lr=3,epochs=2 finished: train_cost" in result.stdout
    [log] = workdir.glob("multirun/*/*/1/*.log")
    assert log.read_text().startswith("[2/2] lr=3,epochs=2 finished: train_cost")


def test_the_parent_run_holds_the_sweeps_results(workdir):
    harness("-m", "lr=1,3,1000", "epochs=2", cwd=workdir)
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("harness").experiment_id])
    [parent] = [run for run in runs if run.data.tags.get("role") == "sweep"]
    jobs = [run for run in runs if run.data.tags.get("role") is None]
    assert parent.data.metrics["jobs_finished"] + parent.data.metrics["jobs_diverged"] == 3
    chosen = max((run for run in jobs if run.data.tags["status"] == "finished"),
                 key=lambda run: run.data.metrics["validation_accuracy"])
    assert parent.data.tags["best_run"] == chosen.info.run_id
    assert parent.data.metrics["test_accuracy_at_best_validation"] == chosen.data.metrics["test_accuracy"]
    assert "best_test_accuracy" not in parent.data.metrics  # never a best chosen on the test set
    assert "summary.txt" in [artifact.path for artifact in client.list_artifacts(parent.info.run_id)]


def test_a_parallel_sweep_records_the_blas_threads_it_ran_with(workdir):
    harness("-m", "launcher=parallel", "lr=1,3", "epochs=1", cwd=workdir)
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("harness").experiment_id], "params.lr != ''")
    assert [run.data.params["blas_threads"] for run in runs] == ["1", "1"]


def test_a_dry_run_lists_the_jobs_and_what_resume_would_do_without_touching_the_store(workdir):
    harness("lr=3", "epochs=2", cwd=workdir)
    before = (workdir / "mlflow.db").read_bytes()
    result = harness("-m", "lr=1,3", "epochs=2", "dry_run=true", cwd=workdir)
    rows = [line.split(maxsplit=2) for line in result.stdout.splitlines() if line.startswith("lr=")]
    assert [(row[0], row[2].split(":")[0]) for row in rows] == [("lr=1,epochs=2", "train it"), ("lr=3,epochs=2", "skip it")]
    assert (workdir / "mlflow.db").read_bytes() == before and not (workdir / "multirun").exists()


def test_help_lists_the_keys_and_the_choices_of_each_group(workdir):
    text = harness("--help", cwd=workdir).stdout
    assert "lr: 3.0            # η, the learning rate" in text
    assert "data=: blobs, digits, fashion_mnist, linear, mnist" in text and "_schema" not in text


def test_cfg_with_a_sweep_is_one_line(workdir):
    result = harness("-m", "--cfg", "job", "lr=1,2", cwd=workdir, check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_a_parallel_sweep_counts_its_finished_jobs_in_the_order_they_print(workdir):
    result = harness("-m", "lr=0.5,1,2,3,4,5", "epochs=2", "launcher=parallel", cwd=workdir)
    counts = [line.split("]")[0] for line in result.stdout.splitlines() if line.startswith("[") and "/6]" in line]
    assert counts == [f"[{done}/6" for done in range(1, 7)]  # whichever worker's job ends first is 1
