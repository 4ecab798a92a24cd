"""The README's recipe for a sweep beyond one machine, run for real on this one: a Ray cluster of
two nodes (`ray start --head`, and `ray start --address` for a worker node), an MLflow server on SQLite and on PostgreSQL reached by a host name,
the sweep launched onto the cluster with the README's command, and the report read from the
server. Everything listens on and talks to loopback addresses only."""

import subprocess

import pytest
from mlflow.tracking import MlflowClient

import servers
from conftest import REPO, harness

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with servers.ray_cluster(tmp_path_factory.mktemp("ray-cluster")) as head:
        yield head


@pytest.fixture(scope="module", params=["sqlite_server", "postgres_server"])
def server(request) -> str:
    """The URI of an MLflow server on SQLite, then of one on PostgreSQL."""
    return request.getfixturevalue(request.param).uri


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, cluster, server):
    """The README's command: two jobs as Ray tasks on the cluster, tracked by the server."""
    launch = tmp_path_factory.mktemp("launch")
    result = harness("-m", "lr=1,3", "epochs=2", "launcher=ray", "tracking=server", f"tracking.uri={server}",
                     f"hydra.launcher.ray.init.address={cluster.address}", cwd=launch,
                     env={**cluster.env, "RAY_DEDUP_LOGS": "0"})  # each task's output line keeps its node's address
    store = MlflowClient(server)
    runs = store.search_runs([store.get_experiment_by_name("harness").experiment_id], max_results=100)
    return launch, result, runs


def jobs(runs):
    return [run for run in runs if run.data.tags.get("role") != "sweep"]


def test_every_job_has_a_finished_run_in_the_server(sweep):
    _, result, runs = sweep
    assert sorted((run.data.params["lr"], run.info.status) for run in jobs(runs)) == [("1.0", "FINISHED"),
                                                                                     ("3.0", "FINISHED")]
    assert "2 jobs: 2 finished, 0 diverged, 0 failed, 0 killed, 0 skipped" in result.stdout


def test_the_jobs_are_children_of_one_sweep_run(sweep):
    _, _, runs = sweep
    parents = [run for run in runs if run.data.tags.get("role") == "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert [run.data.tags["mlflow.parentRunId"] for run in jobs(runs)] == [parents[0].info.run_id] * 2


def test_the_jobs_ran_on_both_nodes_of_the_cluster(sweep):
    _, result, _ = sweep
    assert "Connected to Ray cluster" in result.stderr
    # Ray prefixes a task's output with the address of its node where it is not the driver's
    assert f"ip={servers.RAY_WORKER_IP})" in result.stdout + result.stderr


def test_the_jobs_record_the_code_and_data_they_ran(sweep):
    _, _, runs = sweep
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert {run.data.tags["git_commit"] for run in jobs(runs)} == {commit}
    assert len({run.inputs.dataset_inputs[0].dataset.digest for run in jobs(runs)}) == 1


def test_job_output_folders_are_under_the_launch_directory(sweep):
    launch, _, _ = sweep
    [sweep_dir] = (launch / "multirun").glob("*/*")
    assert sorted(path.name for path in sweep_dir.iterdir() if path.is_dir()) == ["0", "1"]
    assert (sweep_dir / "0" / ".hydra" / "overrides.yaml").exists()


def test_report_reads_the_sweep_from_the_server(sweep, server, tmp_path):
    harness("report", "--tracking-uri", server, "--experiment", "harness", "--out", str(tmp_path / "report"),
            cwd=tmp_path, module="analysis")
    report = (tmp_path / "report" / "report.md").read_text()
    assert f"- tracking URI: `{server}`" in report and "**Runs.** 2 runs from the latest sweep" in report
    assert (tmp_path / "report" / "report.html").exists()


def test_the_launching_shells_tracking_uri_reaches_the_jobs_on_the_cluster(cluster, sqlite_server, tmp_path):
    harness("-m", "lr=0.5,1", "epochs=1", "launcher=ray", "tracking=server", "tracking.experiment=uri_from_env",
            f"hydra.launcher.ray.init.address={cluster.address}", cwd=tmp_path,
            env={**cluster.env, "MLFLOW_TRACKING_URI": sqlite_server.uri})  # not in the nodes' own environment
    store = MlflowClient(sqlite_server.uri)
    runs = store.search_runs([store.get_experiment_by_name("uri_from_env").experiment_id])
    assert sorted(run.info.status for run in jobs(runs)) == ["FINISHED", "FINISHED"]

