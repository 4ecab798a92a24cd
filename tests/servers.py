"""Real servers for the cluster tests, each started on the loopback interface and stopped by the
test that started it: an MLflow tracking server, a PostgreSQL database for it, a Ray cluster.

Each runs in a session of its own, so that stopping it ends every process it started; every wait
is bounded. With CI=true a missing program or package fails the test instead of skipping it.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest

# the Ray nodes' addresses: loopback, and not 127.0.0.1, which Ray swaps for the machine's
# network address ("reachable from other nodes")
RAY_HEAD_IP, RAY_WORKER_IP = "127.0.0.2", "127.0.0.3"
POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def missing(reason: str) -> None:
    """Skip the test for want of something it needs; in CI, where it must be there, fail."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


class Cluster(NamedTuple):
    address: str  # the head's HOST:PORT
    env: dict[str, str]  # what a driver needs to join it: RAY_AUTH_MODE=token and the token's file
    head: subprocess.Popen  # the leader of the head node's session


class Server(NamedTuple):
    uri: str  # http://HOST:PORT
    backend: str  # its backend store's URI
    process: subprocess.Popen  # the leader of the server's session


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def loopback_host() -> str:
    """A host name, not an address, that resolves to 127.0.0.1: this machine's own name if it does,
    else an alias added to /etc/hosts (as root)."""
    for name in (socket.gethostname(), "harness-cluster-test"):
        try:
            if socket.gethostbyname(name) == "127.0.0.1":
                return name
        except OSError:
            pass
    if os.geteuid() != 0:
        missing("no host name resolves to 127.0.0.1, and only root may add one to /etc/hosts")
    with open("/etc/hosts", "a") as hosts:
        hosts.write("127.0.0.1 harness-cluster-test\n")
    return "harness-cluster-test"


def stop(process: subprocess.Popen, signum: int = signal.SIGTERM, grace: float = 20.0) -> None:
    """`signum` to the process's session, SIGKILL to what is left of it after `grace` seconds."""
    try:
        os.killpg(process.pid, signum)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)  # e.g. Ray's gcs_server, which outlives `ray start --block`
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def wait_until(ready, process: subprocess.Popen, what: str, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            pytest.fail(f"{what} did not start; its log ends:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except OSError:
        return False


@contextmanager
def mlflow_server(backend: str, folder: Path, host: str, allow_host: bool = True) -> Iterator[Server]:
    """`mlflow server` on 127.0.0.1 with the backend store `backend`, reached by the host name
    `host`, which its host check accepts only with `allow_host`."""
    port = free_port()
    options = ["--allowed-hosts", f"{host}:{port}"] if allow_host else []
    log = folder / f"mlflow-server-{port}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", backend, "--artifacts-destination", str(folder / "artifacts"), *options],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    # its own log says it listens: another process that took the port meanwhile may answer /health too
    listening = lambda: f"running on http://127.0.0.1:{port}" in log.read_text() and answers(f"http://127.0.0.1:{port}/health")
    wait_until(listening, process, "mlflow server", log)
    try:
        yield Server(f"http://{host}:{port}", backend, process)
    finally:
        os.killpg(process.pid, signal.SIGCONT)  # a test may have stopped it
        stop(process)


@contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL server of its own (a fresh data folder, 127.0.0.1 only) with an empty database
    `mlflow`; yields the SQLAlchemy URI MLflow takes, with the psycopg2 driver."""
    if not POSTGRES_BIN or os.geteuid() != 0:
        missing("PostgreSQL (apt-get install postgresql) and root, to run it as the postgres user")
    if importlib.util.find_spec("psycopg2") is None:  # the driver of postgresql+psycopg2://
        missing("psycopg2 (pip install -e '.[server]')")
    bin_dir, port = POSTGRES_BIN[-1], free_port()
    folder = Path(tempfile.mkdtemp(prefix="harness-pg-"))  # not under pytest's root-only tmp folders
    as_postgres = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run(["chown", "postgres:", str(folder)], check=True)
        subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(folder / "data"), "--auth=trust",
                        "-U", "postgres"], check=True, capture_output=True, timeout=120)
        log = folder / "postgres.log"
        with open(log, "w") as out:
            process = subprocess.Popen([*as_postgres, str(bin_dir / "postgres"), "-D", str(folder / "data"),
                                        "-k", str(folder), "-h", "127.0.0.1", "-p", str(port)],
                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        ready = lambda: subprocess.run([str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode == 0
        wait_until(ready, process, "postgres", log)
        try:
            subprocess.run([*as_postgres, str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "mlflow"],
                           check=True, capture_output=True, timeout=60)
            yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
        finally:
            stop(process, signal.SIGINT)  # PostgreSQL's fast shutdown
    finally:
        subprocess.run(["rm", "-rf", str(folder)])


def ray_start(arguments: list[str], name: str, folder: Path, env: dict[str, str]) -> subprocess.Popen:
    """`ray start --block ARGUMENTS`, once it says the node runs."""
    log = folder / f"ray-{name}.log"
    with open(log, "w") as out:
        process = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--block", *arguments,
                                    "--disable-usage-stats", f"--dashboard-agent-listen-port={free_port()}"],
                                   cwd=folder, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
                                   start_new_session=True)
    wait_until(lambda: "Ray runtime started" in log.read_text(), process, f"ray start ({name})", log)
    return process


@contextmanager
def ray_cluster(folder: Path) -> Iterator[Cluster]:
    """A Ray cluster of two nodes with one CPU each and token authentication: `ray start --head`
    at RAY_HEAD_IP, a worker node joined to it at RAY_WORKER_IP."""
    if importlib.util.find_spec("ray") is None:
        missing("Ray (pip install -e '.[ray]')")
    token = folder / "ray_token"
    token.write_text(os.urandom(32).hex())
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    address = f"{RAY_HEAD_IP}:{free_port()}"
    temp = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's socket paths under it must fit in 107 bytes
    try:
        head = ray_start(["--head", f"--node-ip-address={RAY_HEAD_IP}", f"--port={address.split(':')[1]}",
                          "--num-cpus=1", f"--temp-dir={temp}", "--include-dashboard=false",
                          f"--ray-client-server-port={free_port()}"], "head", folder, env)
        try:
            worker = ray_start([f"--address={address}", f"--node-ip-address={RAY_WORKER_IP}", "--num-cpus=1",
                                f"--temp-dir={temp}"], "worker", folder, env)
            try:
                yield Cluster(address, env, head)
            finally:
                stop(worker, grace=5)
        finally:
            stop(head, grace=5)
    finally:
        subprocess.run(["rm", "-rf", str(temp)])
