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


@pytest.fixture
def server(tmp_path, free_port):
    uri = f"http://127.0.0.1:{free_port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(free_port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # its workers in its group
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2).close()
            break
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("mlflow server did not start")
            time.sleep(0.5)
    yield uri, process
    os.killpg(process.pid, signal.SIGCONT)
    process.terminate()
    process.wait(timeout=30)


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
    job = subprocess.Popen([sys.executable, "-m", "harness", "epochs=100000", f"tracking.uri={uri}"], cwd=tmp_path,
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
