"""What a sweep shows on the terminal: its first and last lines, and no other library's lines
unless verbose=true (they go to the log files)."""

import shlex

import pytest
from mlflow.tracking import MlflowClient

from conftest import harness

pytestmark = pytest.mark.slow


def test_a_sweep_starts_with_one_line_naming_its_jobs_launcher_and_store(workdir):
    first = harness("-m", "lr=1,3", "seed=0,1", "epochs=1", cwd=workdir).stdout.splitlines()[0]
    assert first == (f"4 jobs, launcher sequential (one job after another in this process), "
                     f"tracked in sqlite:///{workdir / 'mlflow.db'} (experiment harness)")


def test_a_sweep_ends_with_its_id_and_a_report_command_that_runs(workdir):
    lines = harness("-m", "lr=1,3", "epochs=2", "tracking.experiment=ends", cwd=workdir).stdout.splitlines()
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    [parent] = client.search_runs([client.get_experiment_by_name("ends").experiment_id], "tags.role = 'sweep'")
    took, browse, report = lines[-3:]
    assert took.startswith(f"sweep {parent.info.run_id} took ") and took.endswith(" s")
    experiment = parent.info.experiment_id
    assert browse == (f"browse: mlflow ui --backend-store-uri sqlite:///{workdir / 'mlflow.db'}  # then open "
                      f"http://127.0.0.1:5000/#/experiments/{experiment}?workflowType=machine_learning")
    assert report == f"report: harness report --experiment ends --sweep {parent.info.run_id}"
    command = shlex.split(report.removeprefix("report: harness "))
    written = harness(*command, "--out", "rep", cwd=workdir).stdout
    assert (workdir / "rep" / "report.html").is_file(), written


def test_hydras_lines_go_to_the_sweeps_log_file_and_reach_the_terminal_only_with_verbose(workdir):
    quiet = harness("-m", "lr=1,3", "epochs=1", cwd=workdir).stdout
    [log] = workdir.glob("multirun/*/*/multirun.log")
    assert "Launching 2 jobs locally" in log.read_text() and "Launching" not in quiet
    loud = harness("-m", "lr=2,4", "epochs=1", "verbose=true", cwd=workdir).stdout  # new jobs: resume skips none
    assert "Launching 2 jobs locally" in loud
