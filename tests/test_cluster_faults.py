"""Faults of a sweep on a Ray cluster, as they happen: its driver (the process that launches the
sweep) signalled while the jobs train on the cluster's two nodes, a job's worker killed, and the
cluster's head lost.
Afterwards the MLflow server must say what really happened: no run left RUNNING, none ended
FINISHED by a job that went on after the sweep was stopped."""

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

import servers
from harness.store import RUN_WATCH_SECONDS
from harness.sweep import LEFT_RUNNING

pytestmark = pytest.mark.slow

# after the driver exits, a job that was still running would have ended its run by then
LATE_SECONDS = RUN_WATCH_SECONDS + 1


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with servers.ray_cluster(tmp_path_factory.mktemp("ray-cluster")) as cluster:
        yield cluster


def start_driver(cluster: servers.Cluster, uri: str, experiment: str, folder, epochs: int) -> subprocess.Popen:
    """A sweep of two jobs, one on each node; the driver in a session of its own (a terminal's
    Ctrl-C reaches its whole process group)."""
    return subprocess.Popen([sys.executable, "-m", "harness", "-m", "lr=1,3", f"epochs={epochs}", "launcher=ray",
                             "tracking=server", f"tracking.uri={uri}", f"tracking.experiment={experiment}",
                             f"hydra.launcher.ray.init.address={cluster.address}"], cwd=folder,
                            env={**os.environ, **cluster.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def records(store: MlflowClient, experiment: str) -> list[tuple[str, str, str | None]]:
    """(role, status, error) of every run of the experiment, sorted."""
    found = store.get_experiment_by_name(experiment)
    runs = store.search_runs([found.experiment_id]) if found else []
    return sorted((run.data.tags.get("role", "job"), run.info.status, run.data.tags.get("error")) for run in runs)


def wait_until_training(store: MlflowClient, experiment: str, driver: subprocess.Popen, timeout: float = 120.0) -> list:
    """Both jobs' runs, once they are RUNNING with metrics in the store."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and driver.poll() is None:
        found = store.get_experiment_by_name(experiment)
        runs = [run for run in store.search_runs([found.experiment_id]) if "role" not in run.data.tags] if found else []
        if len(runs) == 2 and all(run.info.status == "RUNNING" and run.data.metrics for run in runs):
            return runs
        time.sleep(0.5)
    driver.kill()
    raise AssertionError(f"the jobs did not start training:\n{driver.communicate()[1][-3000:]}")


@pytest.fixture
def driver_of(cluster, sqlite_server, tmp_path):
    """Starts a driver on the cluster (see start_driver) and waits until its jobs train: the
    driver and the jobs' runs. Kills what is left of the driver after the test."""
    started = []

    def start(experiment: str, epochs: int = 100000) -> tuple[subprocess.Popen, list]:
        started.append(start_driver(cluster, sqlite_server.uri, experiment, tmp_path, epochs))
        return started[-1], wait_until_training(MlflowClient(sqlite_server.uri), experiment, started[-1])

    yield start
    for driver in started:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()


@pytest.mark.parametrize("signum, whom", [(signal.SIGINT, "the process group"), (signal.SIGTERM, "the driver")])
def test_a_signal_to_the_driver_ends_every_run_of_the_sweep_killed_within_seconds(driver_of, sqlite_server,
                                                                                  signum, whom):
    experiment = f"driver_{signum.name}"
    driver, _ = driver_of(experiment)
    os.killpg(driver.pid, signum) if whom == "the process group" else driver.send_signal(signum)
    _, stderr = driver.communicate(timeout=30)
    assert driver.returncode == 128 + signum, stderr[-2000:]
    at_exit = records(MlflowClient(sqlite_server.uri), experiment)
    assert at_exit == [("job", "KILLED", f"killed by {signum.name}")] * 2 + [("sweep", "KILLED", f"killed by {signum.name}")]
    time.sleep(LATE_SECONDS)
    assert records(MlflowClient(sqlite_server.uri), experiment) == at_exit


def test_a_job_whose_worker_dies_runs_again_and_its_first_run_is_marked_failed(driver_of, sqlite_server):
    driver, runs = driver_of("worker_killed", epochs=500)
    os.kill(int(runs[0].data.tags["pid"]), signal.SIGKILL)  # Ray runs the task again, on a node with a free CPU
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 0, stderr[-2000:]
    assert records(MlflowClient(sqlite_server.uri), "worker_killed") == [
        ("job", "FAILED", LEFT_RUNNING), ("job", "FINISHED", None), ("job", "FINISHED", None), ("sweep", "FINISHED", None)]


def test_a_lost_head_stops_the_sweep_with_one_line_and_no_run_left_running(cluster, driver_of, sqlite_server):
    """Last in this module: it ends the module's cluster."""
    driver, _ = driver_of("head_lost")
    servers.stop(cluster.head, signal.SIGKILL)  # the head's machine lost: its GCS and raylet gone at once
    _, stderr = driver.communicate(timeout=90)
    assert driver.returncode == 1
    gone = f"ConnectionError: the Ray cluster's head at {cluster.address} is gone"
    assert stderr.strip().splitlines()[-1] == (f"error: the sweep stopped: {gone}; its unfinished runs are marked "
                                               f"FAILED; launch the same command again to run what did not finish")
    time.sleep(LATE_SECONDS)
    runs = records(MlflowClient(sqlite_server.uri), "head_lost")
    assert len(runs) == 3 and all(status in ("FAILED", "KILLED") and gone in error for _, status, error in runs), runs
