"""How a sweep with `launcher=ray` runs its jobs as Ray tasks, and how its driver stops.

The driver is the process that launches the sweep and waits for its jobs, on a local Ray
instance or on a cluster. Hydra's Ray plugin would wait in `ray.get`, and two things keep a stop
from ending there with a true record: `ray.init` installs its own SIGTERM handler over the
harness's (it exits 1 and marks nothing), and from inside `ray.get` only a KeyboardInterrupt gets
out: the harness's `Stopped` is swallowed there until every task has ended, so Ctrl-C would wait
for the whole sweep. So the driver puts the harness's handlers back after `ray.init` and waits for
the jobs in rounds of `ray.wait`, checking for a signal between them. Stopped, it cancels the
jobs' tasks (Ray kills their worker processes) before `cli` marks the runs KILLED, so that no job
writes to its run after that.

Between rounds it also checks that the cluster's head (its GCS) still takes connections: once it
is gone (`ray stop`, a lost machine), Ray would end this process a minute later with exit 1 and
its runs left RUNNING; after HEAD_LOST_SECONDS without an answer, the sweep stops as a failed
launch instead, with one line and its runs marked FAILED.

Hydra finds this launcher in `hydra_plugins/harness_ray_launcher`.
"""

from __future__ import annotations

import socket
import time
from typing import Sequence

import ray
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra_plugins.hydra_ray_launcher._launcher_util import launch_job_on_ray, start_ray
from omegaconf import open_dict

from . import signals

CANCEL_SECONDS = 10.0  # how long a stopped driver waits for Ray to kill its jobs' workers
HEAD_LOST_SECONDS = 10.0  # a head that takes no connection for this long is gone, not restarting


def launch(launcher: Launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """Each job as a Ray task, as Hydra's Ray plugin launches it; their returns once all are done."""
    with signals.kept():
        start_ray(launcher.ray_cfg.init)
    tasks = []
    for number, overrides in enumerate(job_overrides, initial_job_idx):
        cfg = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
        with open_dict(cfg):
            cfg.hydra.job.id, cfg.hydra.job.num = f"job_id_for_{number}", number
        tasks.append(launch_job_on_ray(launcher.hydra_context, launcher.ray_cfg.remote, cfg, launcher.task_function,
                                       Singleton.get_state()))
    return wait(tasks)


def wait(tasks: list[ray.ObjectRef]) -> list[JobReturn]:
    """The jobs' returns once every task is done; stopped, the tasks are cancelled first. A
    ConnectionError if the cluster's head is gone."""
    head, answered = ray.get_runtime_context().gcs_address, time.monotonic()
    try:
        with signals.deferred():
            pending = tasks
            while pending:
                _, pending = ray.wait(pending, num_returns=len(pending), timeout=signals.WATCH_SECONDS)
                signals.check()
                if answers(head):
                    answered = time.monotonic()
                elif time.monotonic() - answered > HEAD_LOST_SECONDS:
                    raise ConnectionError(f"the Ray cluster's head at {head} is gone")
    except signals.Stopped:
        for task in tasks:
            ray.cancel(task, force=True)
        ray.wait(tasks, num_returns=len(tasks), timeout=CANCEL_SECONDS)
        raise
    return ray.get(tasks)


def answers(address: str) -> bool:
    """Does HOST:PORT take a TCP connection within a second?"""
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1.0).close()
        return True
    except OSError:
        return False
