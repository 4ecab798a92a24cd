"""`harness.server`: one line for each way a tracking store cannot take a sweep's runs, checked
against real servers (an MLflow server reached by a host name, a PostgreSQL database under it, a
web server that is not MLflow) on loopback addresses."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlsplit

import pytest

import servers
from harness.config import ConfigError
from harness.server import check_server, refuse_local_store

RAY = "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("uri", ["sqlite:///mlflow.db", "sqlite:////srv/mlflow.db", "file:///srv/mlruns", "mlruns"])
def test_ray_launcher_refuses_a_store_on_one_machines_disk(uri):
    with pytest.raises(ConfigError) as error:
        refuse_local_store(RAY, uri)
    assert one_line(error) == (f"tracking.uri: {uri} is a store on one machine's disk, which the jobs of a distributed "
                               f"launcher cannot share; use tracking=server (an MLflow server every node reaches)")


@pytest.mark.parametrize("uri", ["http://head:5000", "https://mlflow.example.org",
                                 "postgresql+psycopg2://mlflow@db:5432/mlflow"])
def test_ray_launcher_takes_a_shared_store(uri):
    refuse_local_store(RAY, uri)


def test_a_launcher_on_this_machine_takes_a_sqlite_store():
    refuse_local_store(JOBLIB, "sqlite:///mlflow.db")


def test_stores_other_than_a_server_are_not_checked():
    check_server("sqlite:///no/such/folder/mlflow.db")


def test_no_server_at_the_address_is_one_line(free_port):
    with pytest.raises(ConfigError) as error:
        check_server(f"http://127.0.0.1:{free_port}")
    assert one_line(error).startswith(f"tracking.uri: cannot reach the MLflow server at http://127.0.0.1:{free_port} "
                                      f"([Errno 111] Connection refused)")


@pytest.mark.slow
def test_server_reached_by_an_allowed_host_name_passes(sqlite_server):
    check_server(sqlite_server.uri)


@pytest.mark.slow
def test_server_refusing_the_host_name_says_which_allowed_hosts_fix_it(sqlite_server):
    name = f"localhost:{urlsplit(sqlite_server.uri).port}"  # not in its --allowed-hosts, which replace the defaults
    urllib.request.urlopen(f"http://{name}/health", timeout=10).close()  # its health check still answers
    with pytest.raises(ConfigError) as error:
        check_server(f"http://{name}")
    assert one_line(error) == (f"tracking.uri: the MLflow server at http://{name} refuses the host name {name} (MLflow's "
                               f"host check); start it with `mlflow server --allowed-hosts {name}` "
                               f"(or MLFLOW_SERVER_ALLOWED_HOSTS={name})")


@pytest.mark.slow
def test_server_that_stops_answering_fails_within_the_timeout(sqlite_server):
    os.killpg(sqlite_server.process.pid, signal.SIGSTOP)  # connections accepted by the kernel, answered by no one
    try:
        start = time.monotonic()
        with pytest.raises(ConfigError) as error:
            check_server(sqlite_server.uri, timeout=2)
        assert time.monotonic() - start < 5
    finally:
        os.killpg(sqlite_server.process.pid, signal.SIGCONT)
    assert one_line(error).startswith(f"tracking.uri: the MLflow server at {sqlite_server.uri} did not answer "
                                      f"GET /api/2.0/mlflow/experiments/search?max_results=1 within 2 s")


@pytest.mark.slow
def test_server_whose_database_is_locked_fails_though_its_health_check_answers(postgres_server):
    import psycopg2

    check_server(postgres_server.uri)  # the tables exist
    lock = psycopg2.connect(postgres_server.backend.replace("postgresql+psycopg2", "postgresql"))
    try:
        lock.cursor().execute("LOCK TABLE experiments IN ACCESS EXCLUSIVE MODE")  # held until rollback
        urllib.request.urlopen(f"{postgres_server.uri}/health", timeout=10).close()
        with pytest.raises(ConfigError) as error:
            check_server(postgres_server.uri, timeout=2)
    finally:
        lock.rollback()
        lock.close()
    assert "did not answer GET /api/2.0/mlflow/experiments/search?max_results=1 within 2 s" in one_line(error)


@pytest.mark.slow
def test_web_server_that_is_not_mlflow_is_one_line(tmp_path, free_port):
    log = tmp_path / "http.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(free_port)],
                                   cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        servers.wait_until(lambda: servers.answers(f"http://127.0.0.1:{free_port}/"), process, "http.server", log)
        with pytest.raises(ConfigError) as error:
            check_server(f"http://127.0.0.1:{free_port}")
    finally:
        servers.stop(process)
    assert one_line(error) == (f"tracking.uri: the MLflow server at http://127.0.0.1:{free_port} answered 404 "
                               f"File not found to GET /api/2.0/mlflow/experiments/search?max_results=1")
