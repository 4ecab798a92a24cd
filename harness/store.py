"""The MLflow store, and what the job layer asks of it.

Opening: a SQLite store is created under an exclusive lock on its file, so launches that start
together in a new folder do not race MLflow's migrations; the first store MLflow migrates for
this MLflow version is kept, empty, in the user's cache as the template the next new stores are
copied from. A store left half-created (a disk that filled during the first launch) and holding
no runs is emptied and made anew. A server is checked with a real API call
(`server.check_server`) before any job starts.

Questions: is a config already trained to its last epoch (resume), is another process training
it right now (a live claim), and which RUNNING runs were abandoned by a process that is gone (on
this host: its pid; on another host: a heartbeat older than `STALE_SECONDS`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import sqlite3
import sys
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from . import names
from .cache import user_cache
from .errors import ConfigError, describe, library_logs_in_one_line
from .server import check_server
from .signals import check as check_signals
from .signals import process_alive

if TYPE_CHECKING:  # MLflow itself is imported where it is used: the network and a dry run do without it
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

# MLflow retries an unreachable server 7 times with exponential backoff (minutes); fail in seconds
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
HEARTBEAT_SECONDS = 30.0  # how often a job on any host says its run is alive
RUN_WATCH_SECONDS = 5.0  # how often a job looks whether its run was ended by someone else
STALE_SECONDS = 600.0  # a RUNNING run of another host silent for this long was abandoned
TEMPLATES = user_cache()  # where store.template() is kept
SEARCH_PAGE = 1000  # runs per page of a search

_opened: set[str] = set()  # stores this process has opened (each is created or checked once)
_clients: dict[str, MlflowClient] = {}  # one client per store and process
_experiments: dict[tuple[str, str], str] = {}  # (store, experiment name): its id, once found


def client_of(uri: str) -> MlflowClient:
    """This process's client of the store at `uri` (each MlflowClient resolves its store anew)."""
    if uri not in _clients:
        from mlflow.tracking import MlflowClient

        _clients[uri] = MlflowClient(uri)
    return _clients[uri]


def connect(uri: str) -> MlflowClient:
    """The client of the store at `uri`, created if new; a store that cannot be used is a
    ConfigError naming tracking.uri, within seconds."""
    import mlflow

    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    library_logs_in_one_line()  # a full disk fails every write, and MLflow logs each with its tracebacks
    if uri not in _opened:
        if uri.startswith(("http://", "https://")):
            check_server(uri)  # a real API call, not only /health
        elif uri.startswith("sqlite:///"):
            open_sqlite(uri)
        _opened.add(uri)
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)  # for the MLflow calls that only take the global store
    return client_of(uri)


def after_fork() -> None:
    """In a process forked from one that used a SQL store: its connections stay the parent's,
    and this process opens its own (SQLAlchemy's way for a forked child)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    for engine in SqlAlchemyStore._engine_map.values():
        engine.dispose(close=False)


def patiently(patience: float, call, *args, **kwargs):
    """A call to the store, tried again after 1, 2, 4, 8, 8… s while it fails, until `patience`
    seconds of wall time have passed since the first try (`tracking.patience`): a tracking server
    restarting is waited for, training paused. The tries themselves count: each gets no more
    HTTP time than is left, with no retries of MLflow's own."""
    if patience <= 0:
        return call(*args, **kwargs)
    deadline, pause = time.monotonic() + patience, 1.0
    while True:
        try:
            with http_budget(deadline - time.monotonic()):
                return call(*args, **kwargs)
        except Exception:
            if time.monotonic() >= deadline:
                raise
        check_signals()
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))  # the last try is at the deadline
        pause = min(2 * pause, 8.0)


@contextmanager
def http_budget(seconds: float) -> Iterator[None]:
    """MLflow's HTTP requests of this process time out within `seconds` (at least 1, at most their
    own timeout) and are not retried by MLflow, while in this block (MLflow reads the variables
    at each request)."""
    saved = {key: os.environ.get(key) for key in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")}
    timeout = float(saved["MLFLOW_HTTP_REQUEST_TIMEOUT"] or HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"])
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, min(int(timeout), int(seconds))))
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def sqlite_path(uri: str) -> Path:
    return Path(uri.removeprefix("sqlite:///"))  # sqlite:////abs/mlflow.db gives /abs/mlflow.db


def open_sqlite(uri: str) -> None:
    """Create or check the store while holding an exclusive lock on its file. SQLite's own locks
    are POSIX locks, which an flock does not touch; none is held here when the lock is released.
    A new store is a copy of the template, if there is one yet."""
    path = sqlite_path(uri)
    with locked(path):
        new = path.stat().st_size == 0
        if new and from_template(path):
            try:
                mlflow_opens(uri)
                return
            except Exception:  # noqa: BLE001 - not a store this MLflow opens: migrated as if there were none
                template().unlink(missing_ok=True)
                os.truncate(path, 0)
        try:
            mlflow_opens(uri)
            if new:
                keep_template(path)
            return
        except Exception as error:  # noqa: BLE001 - any failure to open is reported or repaired below
            if holds_runs(path):
                raise ConfigError(f"tracking.uri: {path.resolve()} cannot be opened as an MLflow store "
                                  f"({describe(error)}); back it up, then run `mlflow db upgrade {uri}`") from None
            print(f"{path} was a half-created MLflow store with no runs ({describe(error)}); creating it anew",
                  file=sys.stderr)
        try:
            empty(path)  # in place: MLflow keeps a connection to this file open
            mlflow_opens(uri)
        except Exception as error:  # noqa: BLE001
            raise ConfigError(f"tracking.uri: cannot create an MLflow store at {path.resolve()} "
                              f"({describe(error)})") from None


def mlflow_opens(uri: str) -> None:
    """MLflow creates the store (a new or empty file) or checks its schema, raising if it cannot."""
    client_of(uri).search_experiments(max_results=1)


def template() -> Path:
    """The empty store that new stores of this MLflow version are copied from: MLflow's migrations
    of a new SQLite store take longer than a short sweep's jobs, and make the same tables each time."""
    import mlflow

    return TEMPLATES / f"mlflow-{mlflow.__version__}.db"


def from_template(path: Path) -> bool:
    try:
        shutil.copyfile(template(), path)
        return True
    except FileNotFoundError:  # none yet: MLflow migrates this store, which then becomes the template
        return False
    except OSError:  # a copy cut short (a full disk) is no database: MLflow migrates an empty file
        os.truncate(path, 0)
        return False


def keep_template(path: Path) -> None:
    """Keep a copy of this new store as the template, without its Default experiment: MLflow
    makes that in every store it opens without one, with the store's own artifact folder."""
    copy = TEMPLATES / f".{socket.gethostname()}-{os.getpid()}.db"
    try:
        TEMPLATES.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(copy)) as target:
            source.backup(target)
            target.execute("delete from experiment_tags where experiment_id = 0")
            target.execute("delete from experiments where experiment_id = 0")
            target.commit()
        os.replace(copy, template())  # whole or not at all, whoever else writes one at the same time
    except (OSError, sqlite3.Error):
        pass  # no template: the next new store is migrated by MLflow, as this one was
    finally:
        copy.unlink(missing_ok=True)


def empty(path: Path) -> None:
    """Drop every table of the SQLite file, leaving a new database; a file that is no database
    (a copy of the template cut short by a kill) is cut to nothing, which SQLite reads as one."""
    try:
        with closing(sqlite3.connect(path)) as db, db:
            for (table,) in db.execute("select name from sqlite_master where type = 'table'").fetchall():
                db.execute(f'drop table "{table}"')
    except sqlite3.DatabaseError:
        os.truncate(path, 0)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on the file at `path`, created empty if missing (a new SQLite database)."""
    try:
        handle = open(path, "a")
    except OSError as error:
        raise ConfigError(f"tracking.uri: cannot write {path.resolve()} ({error.strerror}); run from a writable "
                          f"folder or set tracking.uri=sqlite:////path/to/mlflow.db") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def holds_runs(path: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute("select count(*) from runs").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def done_already(uri: str, experiment: str, digests: list[str], epochs: list[int]) -> list[str | None]:
    """For each config hash, the id of a complete FINISHED run in the store, read without writing
    anything (a store that does not exist yet holds none)."""
    if uri.startswith("sqlite:///") and not holds_runs(sqlite_path(uri)):
        return [None] * len(digests)
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    import mlflow

    client = client_of(uri)
    mlflow.set_tracking_uri(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return [None] * len(digests)
    done = finished_runs(client, found.experiment_id, dict(zip(digests, epochs)))
    return [done[digest].info.run_id if digest in done else None for digest in digests]


def finished_runs(client: MlflowClient, experiment: str, epochs: dict[str, int]) -> dict[str, Run]:
    """For each config hash of `epochs` (its number of epochs) that has one, a complete FINISHED
    run: one search for the whole sweep, then the epochs of the runs it finds."""
    by_hash: dict[str, list[Run]] = {}
    for run in search(experiment, f"attributes.status = 'FINISHED' and tags.{names.CONFIG_HASH} IS NOT NULL"):
        digest = run.data.tags[names.CONFIG_HASH]
        if digest in epochs:
            by_hash.setdefault(digest, []).append(run)
    found = {digest: finished(client, runs, epochs[digest]) for digest, runs in by_hash.items()}
    return {digest: run for digest, run in found.items() if run is not None}


def experiment_id(client: MlflowClient, name: str) -> str:
    """The id of the named experiment, created if it does not exist yet (asked once per process)."""
    key = (client.tracking_uri, name)
    if key not in _experiments:
        _experiments[key] = find_or_create_experiment(client, name)
    return _experiments[key]


def find_or_create_experiment(client: MlflowClient, name: str) -> str:
    """The experiment's id, created if need be, tagged as MLflow's kind of experiment for model
    development rather than a GenAI application (the UI then opens on its runs)."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, tags={names.EXPERIMENT_KIND: names.MODEL_DEVELOPMENT})
    except MlflowException as error:
        found = client.get_experiment_by_name(name)  # created meanwhile by another process, or refused
        if found is None:
            raise ConfigError(f"tracking.experiment: MLflow refuses the name {name[:40]!r}"
                              f"{'…' if len(name) > 40 else ''} ({describe(error)})") from None
        return found.experiment_id


def search(experiment: str, where: str) -> list[Run]:
    """Every run of the experiment that matches `where`, page after page, with this process's
    client of the current store."""
    import mlflow

    client, runs, token = client_of(mlflow.get_tracking_uri()), [], None
    while True:
        page = client.search_runs([experiment], where, max_results=SEARCH_PAGE, page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


def complete(client: MlflowClient, run: Run, epochs: int) -> bool:
    """Every epoch the run claims is in the store: 0 to `epochs`, or up to the one before it diverged."""
    tags = run.data.tags
    last = int(tags[names.DIVERGED_EPOCH]) - 1 if tags.get(names.STATUS) == names.DIVERGED else epochs
    recorded = {point.step for point in client.get_metric_history(run.info.run_id, names.STEPS)}  # logged every epoch
    return recorded >= set(range(last + 1))


def config_runs(experiment: str, digest: str) -> list[Run]:
    """Every run of this config hash, the latest first."""
    return search(experiment, f"tags.{names.CONFIG_HASH} = '{digest}'")


def finished(client: MlflowClient, runs: list[Run], epochs: int) -> Run | None:
    """The first FINISHED run of these with every epoch recorded, or None."""
    return next((run for run in runs if run.info.status == "FINISHED" and complete(client, run, epochs)), None)


def finished_run(client: MlflowClient, experiment: str, digest: str, epochs: int) -> Run | None:
    """A FINISHED run of this config hash with every epoch recorded, or None."""
    return finished(client, config_runs(experiment, digest), epochs)


def alive(run: Run) -> bool:
    """Is the process that runs it still there? This host: its pid; another: its heartbeat."""
    tags = run.data.tags
    if tags.get(names.HOST) == socket.gethostname() and names.PID in tags:
        return process_alive(int(tags[names.PID]), tags.get(names.PROCESS_START, ""))
    beat = float(tags.get(names.HEARTBEAT, run.info.start_time / 1000))
    return time.time() - beat < STALE_SECONDS


def live(runs: list[Run], mine: str | None = None) -> Run | None:
    """The first RUNNING run of these, other than `mine`, whose process is alive."""
    return next((run for run in runs if run.info.status == "RUNNING" and run.info.run_id != mine and alive(run)), None)


def live_claim(experiment: str, digest: str, mine: str | None = None) -> Run | None:
    """A RUNNING run of this config hash, other than `mine`, whose process is alive."""
    return live(config_runs(experiment, digest), mine)


def end(client: MlflowClient, run_id: str, status: str, error: str | None = None) -> None:
    """End a run FINISHED, FAILED or KILLED, its `status` tag saying the same, with the error if any."""
    from mlflow.entities import RunTag

    tags = [RunTag(names.STATUS, status.lower())] + ([RunTag(names.ERROR, error[:5000])] if error else [])
    client.log_batch(run_id, tags=tags, synchronous=True)
    client.set_terminated(run_id, status)


def close_abandoned(client: MlflowClient, experiment: str) -> list[str]:
    """Mark KILLED each RUNNING run whose process is gone; return their ids."""
    closed = []
    for run in search(experiment, "attributes.status = 'RUNNING'"):
        tags = run.data.tags
        if names.PID in tags and not alive(run):
            end(client, run.info.run_id, "KILLED",
                f"process {tags[names.PID]} on {tags.get(names.HOST)} ended without closing the run")
            closed.append(run.info.run_id)
    return closed
