"""Checks, before a sweep starts, that its tracking store can take the runs of every job.

A sweep on several machines (`launcher=ray` on a cluster) needs one store that every node reaches:
an MLflow tracking server. `check_server` makes the usual ways that goes wrong one line each,
within seconds, instead of a traceback in every job: no server at the address, a server that
refuses the host name it is reached by (MLflow 3's host check), a server whose API hangs (say, on
a stalled database) while its `/health` still answers. `refuse_local_store` stops a distributed
launcher from writing to a SQLite file or a local folder, which each node would resolve on its own
disk: the runs would be scattered, or lost with a worker's temporary directory.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from .errors import ConfigError

# seconds the cheap API call may take; a server that answers `/health` but not this has a stalled store
TIMEOUT = 10.0
PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"
# launchers whose jobs may run on other machines than the one that launched the sweep
DISTRIBUTED_LAUNCHERS = ("hydra_plugins.hydra_ray_launcher.", "hydra_plugins.harness_ray_launcher.")
# stores that live on one machine's disk: SQLite, MLflow's file store, a bare path
LOCAL_SCHEMES = ("sqlite", "file", "")


def credentials() -> dict[str, str]:
    """The Authorization header MLflow's client sends to a server with authentication (its
    basic-auth app): from MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or a bearer
    MLFLOW_TRACKING_TOKEN."""
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return {"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"}
    return {}


def check_server(uri: str, timeout: float = TIMEOUT) -> None:
    """Raise ConfigError (one line) unless the MLflow server at an http(s) `uri` answers a real API
    call; other URIs are left alone."""
    if not uri.startswith(("http://", "https://")):
        return
    host = urlsplit(uri).netloc
    start = f"tracking.uri: the MLflow server at {uri}"
    unreachable = f"tracking.uri: cannot reach the MLflow server at {uri} ({{}}); start it (`mlflow server`) or use tracking=sqlite"
    hung = (f"{start} did not answer GET {PROBE} within {timeout:g} s; "
            f"its database may be stalled or out of the server's reach")
    try:
        request = urllib.request.Request(uri.rstrip("/") + PROBE, headers=credentials())
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        if error.code == 403 and "Invalid Host header" in text:
            raise ConfigError(f"{start} refuses the host name {host} (MLflow's host check); start it with "
                              f"`mlflow server --allowed-hosts {host}` (or MLFLOW_SERVER_ALLOWED_HOSTS={host})") from None
        if error.code == 401:
            raise ConfigError(f"{start} asks for credentials (401 {error.reason}): set MLFLOW_TRACKING_USERNAME and "
                              f"MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) to an account of the server") from None
        raise ConfigError(f"{start} answered {error.code} {error.reason} to GET {PROBE}") from None
    except urllib.error.URLError as error:  # no answer to the connection (a timeout), or refused, or no such host
        raise ConfigError(hung if isinstance(error.reason, TimeoutError) else unreachable.format(error.reason)) from None
    except TimeoutError:  # connected, then no answer
        raise ConfigError(hung) from None
    except (OSError, ValueError) as error:
        raise ConfigError(unreachable.format(error)) from None
    try:
        json.loads(body)
    except ValueError:
        raise ConfigError(f"{start} answered GET {PROBE} with something other than JSON; "
                          f"is it an MLflow tracking server?") from None


def refuse_local_store(launcher_target: str, uri: str) -> None:
    """Raise ConfigError (one line) if a launcher that may run jobs on other machines (its Hydra
    `_target_`) is given a store on one machine's disk."""
    if not launcher_target.startswith(DISTRIBUTED_LAUNCHERS):
        return
    if urlsplit(uri).scheme in LOCAL_SCHEMES:
        raise ConfigError(f"tracking.uri: {uri} is a store on one machine's disk, which the jobs of a distributed "
                          f"launcher cannot share; use tracking=server (an MLflow server every node reaches)")
