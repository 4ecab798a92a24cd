"""Why a job must stop early: SIGINT or SIGTERM, or the sweep's launching process gone.

As in Lightning's signal connector, the handler only records the signal. Training checks it at
every epoch boundary (`check`) and unwinds with `Stopped`, so a stop never cuts a write to the
store in half; outside a job, in a process that only waits for workers, it stops at once. A job
in a worker process also watches the process that launched the sweep: once it is gone (killed
with SIGKILL, say), the job stops as if signalled, and the worker exits instead of taking the
next job of a sweep nobody waits for.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
LAUNCHER = "HARNESS_LAUNCHER"  # environment of a sweep's jobs: "host:pid:start" of the launching process
WATCH_SECONDS = 1.0


class Stopped(BaseException):
    """The job must stop: end its run KILLED with `reason`, then exit with `exit_code`."""

    def __init__(self, reason: str, exit_code: int):
        super().__init__(reason)
        self.reason, self.exit_code = reason, exit_code


received: Stopped | None = None
_deferred = False


def _record(signum, frame) -> None:
    global received
    received = Stopped(f"killed by {signal.Signals(signum).name}", 128 + signum)
    if not _deferred:
        raise received


def check() -> None:
    """Raise `Stopped` if a signal arrived or the launching process is gone: the loop's safe point."""
    if received is not None:
        raise received


@contextmanager
def deferred() -> Iterator[None]:
    """Inside, a signal is only recorded; the code checks it at its safe points, and it is raised
    when the block ends normally."""
    global _deferred
    before, _deferred = _deferred, True
    try:
        yield
    finally:
        _deferred = before
    if not before:
        check()


def in_ray_worker() -> bool:
    """Ray's workers run their own signal handling; the harness leaves it alone there."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE


@contextmanager
def kept() -> Iterator[None]:
    """Inside, a library may install handlers of its own (`ray.init` does, in a Ray driver); the
    handlers before are put back after."""
    before = {signum: signal.getsignal(signum) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


@contextmanager
def handled() -> Iterator[None]:
    """Inside, SIGINT and SIGTERM become `Stopped` (where this process owns its signals); the
    handlers before are restored after."""
    if threading.current_thread() is not threading.main_thread() or in_ray_worker():
        yield
        return
    with kept():
        for signum in SIGNALS:
            signal.signal(signum, _record)
        yield


def clear() -> None:
    """Forget a signal that stopped an earlier call in this process (a notebook goes on)."""
    global received
    received = None


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), "" if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5), counted after the command name


def process_alive(pid: int, start: str) -> bool:
    if Path("/proc/self/stat").exists():
        return process_start(pid) == start != ""  # a reused pid has another start time
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def this_process() -> str:
    """`host:pid:start`, what a launcher hands its jobs in LAUNCHER."""
    return f"{socket.gethostname()}:{os.getpid()}:{process_start(os.getpid())}"


def launcher() -> tuple[int, str] | None:
    """(pid, start) of the process that launched this job's sweep, when that is another process
    of this host: this process is one of its workers."""
    host, _, rest = os.environ.get(LAUNCHER, "").partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid() or in_ray_worker():
        return None  # Ray looks after its own workers
    return int(pid), start


_watching = False


def watch_launcher() -> None:
    """In a worker process, once the launching process is gone: stop the job (as SIGTERM would),
    or, between jobs, exit."""
    global _watching
    found = launcher()
    if found is None or _watching:
        return
    _watching = True

    def watch() -> None:
        global received
        while process_alive(*found):
            time.sleep(WATCH_SECONDS)
        received = Stopped(f"the sweep's launching process {found[0]} is gone", 128 + signal.SIGTERM)
        if not _deferred:  # no job running here: an idle worker would wait for work forever
            os._exit(received.exit_code)

    threading.Thread(target=watch, name="harness-launcher-watch", daemon=True).start()
