"""docs/cluster.md's server with authentication: MLflow's basic-auth app, started as the recipe
starts it (here on 127.0.0.1), refuses requests without credentials and takes a job's runs with
the credentials MLflow's client reads from the environment."""

import importlib.util
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import servers
from conftest import harness

pytestmark = pytest.mark.slow
ADMIN, PASSWORD = "admin", "a-Long-passw0rd-for-tests"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory) -> str:
    if importlib.util.find_spec("flask_wtf") is None:  # the basic-auth app's CSRF protection
        servers.missing("Flask-WTF for MLflow's basic-auth app (pip install '.[server]')")
    folder, port = tmp_path_factory.mktemp("auth-server"), servers.free_port()
    log = folder / "server.log"
    env = {**os.environ, "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD, "MLFLOW_FLASK_SERVER_SECRET_KEY": os.urandom(16).hex()}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
             "--artifacts-destination", str(folder / "artifacts")],
            cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    servers.wait_until(lambda: servers.answers(f"http://127.0.0.1:{port}/health"), process, "mlflow server", log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        servers.stop(process)


def test_the_basic_auth_server_refuses_a_request_without_credentials(auth_server):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{auth_server}/api/2.0/mlflow/experiments/search?max_results=1", timeout=30)
    assert refused.value.code == 401


def test_a_job_without_credentials_stops_with_one_line_naming_them(auth_server, workdir):
    result = harness("epochs=1", "tracking=server", f"tracking.uri={auth_server}", cwd=workdir, check=False,
                     env={"MLFLOW_TRACKING_USERNAME": "", "MLFLOW_TRACKING_PASSWORD": ""})
    assert result.returncode == 2
    assert "asks for credentials (401" in result.stderr and "MLFLOW_TRACKING_USERNAME" in result.stderr


def test_a_job_tracks_to_the_basic_auth_server_with_the_credentials_of_its_environment(auth_server, workdir):
    credentials = {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": PASSWORD}
    result = harness("epochs=1", "tracking=server", f"tracking.uri={auth_server}", cwd=workdir, env=credentials)
    assert result.stdout.splitlines()[-2].startswith("finished: ")
    assert not (Path(workdir) / "mlflow.db").exists()
