"""`tracking=server` against a real `mlflow server` started on 127.0.0.1 by the test."""

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from conftest import harness

pytestmark = pytest.mark.slow


def start_server(folder, port: int) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:port with its store in `folder`, once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'server.db'}", "--artifacts-destination", str(folder / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # its workers in its group
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
            return process
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                os.killpg(process.pid, signal.SIGKILL)
                pytest.fail("mlflow server did not start")
            time.sleep(0.5)


def stop_server(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGCONT)  # a test may have stopped it
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


@pytest.fixture
def server(tmp_path, free_port):
    process = start_server(tmp_path, free_port)
    yield f"http://127.0.0.1:{free_port}", process
    stop_server(process)


def test_sweep_tracks_to_the_server_named_by_mlflow_tracking_uri(tmp_path, server):
    server, _ = server
    work = tmp_path / "work"
    work.mkdir()
    harness("-m", "tracking=server", "lr=0.5,3", "epochs=2", cwd=work, env={"MLFLOW_TRACKING_URI": server})
    store = MlflowClient(server)
    runs = store.search_runs([store.get_experiment_by_name("harness").experiment_id])
    jobs = [run for run in runs if run.data.tags.get("role") != "sweep"]
    assert sorted(run.info.status for run in jobs) == ["FINISHED", "FINISHED"]
    assert [m.step for m in store.get_metric_history(jobs[0].info.run_id, "train_cost")] == [0, 1, 2]
    assert "weights.npz" in [f.path for f in store.list_artifacts(jobs[0].info.run_id)]
    assert not (work / "mlflow.db").exists()


def test_a_server_that_stalls_mid_run_never_leaves_it_finished_and_the_next_launch_marks_it(server, tmp_path):
    uri, process = server
    quick = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "2", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    job = subprocess.Popen([sys.executable, "-m", "harness", "epochs=100000", f"tracking.uri={uri}",
                            "tracking.patience=3"], cwd=tmp_path,
                           env={**os.environ, **quick}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = MlflowClient(uri)
    runs = lambda: client.search_runs([found.experiment_id]) if (found := client.get_experiment_by_name("harness")) else []
    deadline = time.time() + 90
    while not any(run.data.metrics for run in runs()) and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGSTOP)  # the store stops answering, as a server on a stalled disk does
    _, stderr = job.communicate(timeout=120)
    os.killpg(process.pid, signal.SIGCONT)
    assert job.returncode == 1 and stderr.strip().splitlines()[-1].startswith("error: the store failed: MlflowException")
    [run] = runs()
    assert run.info.status == "RUNNING"  # the end could not be written: not FINISHED, and its process is gone
    harness("epochs=1", f"tracking.uri={uri}", cwd=tmp_path)
    run = client.get_run(run.info.run_id)
    assert run.info.status == "KILLED" and "ended without closing the run" in run.data.tags["error"]


def test_a_server_that_restarts_mid_run_is_waited_for_and_the_run_finishes_whole(tmp_path, free_port):
    uri, process = f"http://127.0.0.1:{free_port}", start_server(tmp_path, free_port)
    job = subprocess.Popen([sys.executable, "-m", "harness", "epochs=600", "model.hidden=[100]", f"tracking.uri={uri}",
                            "tracking.patience=60"],
                           cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = MlflowClient(uri)
    runs = lambda: client.search_runs([found.experiment_id]) if (found := client.get_experiment_by_name("harness")) else []
    deadline = time.time() + 90
    while not any(run.data.metrics for run in runs()) and time.time() < deadline:
        time.sleep(0.5)
    stop_server(process)  # down for a few seconds, as a restart is
    time.sleep(3)
    process = start_server(tmp_path, free_port)
    try:
        _, stderr = job.communicate(timeout=300)
        assert job.returncode == 0, stderr[-2000:]
        [run] = runs()
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train_cost")] == list(range(601))
    finally:
        stop_server(process)


@pytest.mark.parametrize("patience", [4, 12])
def test_patience_bounds_the_wall_time_of_the_wait_for_a_stopped_server(server, patience):
    from harness import store

    uri, process = server
    client = store.connect(uri)
    run_id = client.create_run(store.experiment_id(client, "patience")).info.run_id
    os.killpg(process.pid, signal.SIGSTOP)  # connections are accepted, never answered
    start = time.monotonic()
    with pytest.raises(Exception):
        store.patiently(patience, client.set_tag, run_id, "waited", "yes")
    assert patience <= time.monotonic() - start <= patience + 2
