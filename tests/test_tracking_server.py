"""`tracking=server` against a real `mlflow server` started on 127.0.0.1 by the test."""

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
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    yield uri
    process.terminate()
    process.wait(timeout=30)


def test_sweep_tracks_to_the_server_named_by_mlflow_tracking_uri(tmp_path, server):
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
