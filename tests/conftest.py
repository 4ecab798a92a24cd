import os
import subprocess
import sys
from pathlib import Path

import pytest

import servers

REPO = Path(__file__).resolve().parent.parent
MNIST = REPO.parent / "shared" / "data" / "mnist"


def harness(*args: str, cwd: Path, check: bool = True, env: dict | None = None, module: str = "harness"):
    """Run `python -m harness ARGS` (or another module) as a user would, in `cwd`."""
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, read, released)."""
    return servers.free_port()


@pytest.fixture(scope="session")
def loopback_name() -> str:
    """A host name of this machine that resolves to 127.0.0.1."""
    return servers.loopback_host()


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory, loopback_name) -> servers.Server:
    """An MLflow server on SQLite, reached by `loopback_name`, for the tests of this session."""
    folder = tmp_path_factory.mktemp("sqlite-server")
    with servers.mlflow_server(f"sqlite:///{folder / 'mlflow.db'}", folder, loopback_name) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory, loopback_name) -> servers.Server:
    """An MLflow server on a PostgreSQL database of its own, reached by `loopback_name`."""
    folder = tmp_path_factory.mktemp("postgres-server")
    with servers.postgres() as database, servers.mlflow_server(database, folder, loopback_name) as server:
        yield server
