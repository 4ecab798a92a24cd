"""The record in-process: a run is FINISHED only with every epoch it trained in the store, a
failing store never blocks the next job, resume checks what a FINISHED run really holds, a
store left half-created is repaired, and a run records the conditions its seconds depend on."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from threadpoolctl import threadpool_info

import harness
from harness import names, store
from harness.__main__ import unknown_choice
from harness.errors import ConfigError
from harness.job import run_name
from harness.signals import process_alive, process_start
from harness.sweep import ui_command

SMALL = ["data=blobs", "data.n=100", "model.hidden=[4]"]


@pytest.fixture
def uri(workdir):
    return f"sqlite:///{workdir / 'mlflow.db'}"


def the_run(uri):
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("harness").experiment_id])
    return run


def the_run_named(uri, name):
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("harness").experiment_id], f"attributes.run_name = '{name}'")
    return run


def recorded_epochs(uri, run) -> list[int]:
    return [point.step for point in MlflowClient(uri).get_metric_history(run.info.run_id, names.TRAIN_COST)]


def fail_writes_after(monkeypatch, calls: int):
    """Every metrics write of MLflow's client after the first `calls` raises, as a full disk does."""
    log_batch, count = MlflowClient.log_batch, [0]

    def full_disk(self, run_id, **kwargs):
        count[0] += 1
        if count[0] > calls and kwargs.get("metrics"):
            raise OSError(28, "No space left on device")
        return log_batch(self, run_id, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", full_disk)


def test_a_store_that_fails_mid_run_ends_the_run_failed_not_finished(uri, monkeypatch):
    monkeypatch.setattr("harness.tracking.Recorder.FLUSH_SECONDS", 0.0)  # one write per epoch
    fail_writes_after(monkeypatch, calls=4)  # params, then epochs 0, 1, 2
    with pytest.raises(OSError):
        harness.train_from_config([*SMALL, "epochs=10", f"tracking.uri={uri}"], track=True)
    run = the_run(uri)
    assert (run.info.status, run.data.tags[names.STATUS]) == ("FAILED", "failed")
    assert run.data.tags[names.ERROR] == "OSError: [Errno 28] No space left on device"
    assert recorded_epochs(uri, run) == [0, 1, 2]


def test_a_job_after_a_store_failure_runs(uri, monkeypatch):
    monkeypatch.setattr("harness.tracking.Recorder.FLUSH_SECONDS", 0.0)
    with monkeypatch.context() as patch:
        fail_writes_after(patch, calls=2)
        with pytest.raises(OSError):
            harness.train_from_config([*SMALL, "epochs=5", f"tracking.uri={uri}"], track=True)
    result, _ = harness.train_from_config([*SMALL, "epochs=2", f"tracking.uri={uri}"], track=True)
    assert result.status == "finished"  # not "Run ... is already active"


def test_a_run_whose_end_the_store_refuses_stays_running_for_the_next_launch_to_close(uri, monkeypatch):
    monkeypatch.setattr("harness.tracking.Recorder.FLUSH_SECONDS", 0.0)
    fail_writes_after(monkeypatch, calls=2)
    monkeypatch.setattr(MlflowClient, "set_terminated", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "full")))
    with pytest.raises(OSError):
        harness.train_from_config([*SMALL, "epochs=5", f"tracking.uri={uri}"], track=True)
    assert the_run(uri).info.status == "RUNNING"  # never FINISHED; its process's end lets the next launch mark it


def finished_run_with_epochs(uri, steps: list[int], tags: dict | None = None) -> tuple[str, str]:
    """A FINISHED run of the default config holding its epochs' `steps` metric at `steps` only."""
    client = store.connect(uri)
    experiment = store.experiment_id(client, "harness")
    digest = harness.config.config_hash(harness.compose(["epochs=5"]))
    run_id = client.create_run(experiment, tags={names.CONFIG_HASH: digest, **(tags or {})}).info.run_id
    client.log_batch(run_id, metrics=[Metric(names.STEPS, 10.0 * step, 0, step) for step in steps])
    client.set_terminated(run_id, "FINISHED")
    return experiment, digest


def test_resume_does_not_take_a_finished_run_that_lacks_epochs(uri):
    experiment, digest = finished_run_with_epochs(uri, [0, 1, 2])
    assert store.finished_run(MlflowClient(uri), experiment, digest, epochs=5) is None


def test_resume_takes_a_finished_run_with_every_epoch(uri):
    experiment, digest = finished_run_with_epochs(uri, [0, 1, 2, 3, 4, 5])
    assert store.finished_run(MlflowClient(uri), experiment, digest, epochs=5) is not None


def test_resume_takes_a_diverged_run_with_every_epoch_before_it_diverged(uri):
    experiment, digest = finished_run_with_epochs(uri, [0, 1, 2], {names.STATUS: names.DIVERGED,
                                                                   names.DIVERGED_EPOCH: "3"})
    assert store.finished_run(MlflowClient(uri), experiment, digest, epochs=5) is not None


def test_resume_takes_a_finished_run_whose_training_split_was_evaluated_every_third_epoch(uri):
    overrides = [*SMALL, "epochs=5", "measure.train_split_every=3", f"tracking.uri={uri}"]
    harness.train_from_config(overrides, track=True)
    client = store.connect(uri)
    assert [point.step for point in client.get_metric_history(the_run(uri).info.run_id, names.TRAIN_COST)] == [0, 3, 5]
    digest = harness.config.config_hash(harness.compose(overrides))
    assert store.finished_run(client, store.experiment_id(client, "harness"), digest, epochs=5) is not None


def test_a_half_created_store_without_runs_is_made_anew(workdir, capsys):
    with sqlite3.connect(workdir / "mlflow.db") as db:  # what a first launch leaves when the disk fills
        db.execute("create table experiments (experiment_id integer primary key)")
        db.execute("create table _alembic_tmp_runs (x integer)")
    client = store.connect(f"sqlite:///{workdir / 'mlflow.db'}")
    assert store.experiment_id(client, "harness")
    assert "half-created MLflow store with no runs" in capsys.readouterr().err


def test_a_store_with_runs_that_cannot_be_opened_is_named_with_the_fix(workdir):
    with sqlite3.connect(workdir / "mlflow.db") as db:
        db.execute("create table runs (run_uuid text)")
        db.execute("insert into runs values ('a')")
    with pytest.raises(ConfigError, match=r"^tracking.uri: .*mlflow.db cannot be opened as an MLflow store .*"
                                          r"run `mlflow db upgrade sqlite:///"):
        store.connect(f"sqlite:///{workdir / 'mlflow.db'}")


def test_a_read_only_folder_is_one_line_at_once(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)]).returncode:
        pytest.skip("needs root to mount a read-only file system")
    try:
        with pytest.raises(ConfigError, match=r"^tracking.uri: cannot write .*mlflow.db \(Read-only file system\)"):
            store.connect(f"sqlite:///{folder / 'mlflow.db'}")
    finally:
        subprocess.run(["umount", str(folder)])


def test_an_experiment_name_mlflow_refuses_is_one_line_naming_the_setting(uri):
    with pytest.raises(ConfigError, match=r"^tracking.experiment: MLflow refuses the name 'xxx.*exceeds the maximum length"):
        store.experiment_id(store.connect(uri), "x" * 600)


def test_short_epochs_are_written_together_and_every_point_is_kept(uri, monkeypatch):
    writes = []
    log_batch = MlflowClient.log_batch
    monkeypatch.setattr(MlflowClient, "log_batch", lambda self, run_id, **kw: writes.append(kw) or log_batch(self, run_id, **kw))
    harness.train_from_config([*SMALL, "epochs=40", f"tracking.uri={uri}"], track=True)
    assert recorded_epochs(uri, the_run(uri)) == list(range(41))
    assert len([w for w in writes if w.get("metrics")]) < 5  # 41 epochs of a few ms each: not one write per epoch


def test_run_name_keeps_what_the_job_computes():
    assert run_name(["lr=3", "launcher=parallel", "+experiment=lr_sweep", "data.root=/d", "seed=0",
                     "tracking.uri=x"]) == "lr=3,seed=0"


def test_unknown_group_choice_is_one_line_naming_the_options():
    assert unknown_choice(["-m", "lr=1", "model=default,big"]) == "model: 'big' is not one of default, linear"
    assert unknown_choice(["data=digits", "hydra/launcher=joblib"]) is None


def test_the_mlflow_ui_command_is_quoted_for_the_shell():
    assert ui_command("sqlite:////tmp/it's here/mlflow.db") == \
        "mlflow ui --backend-store-uri 'sqlite:////tmp/it'\"'\"'s here/mlflow.db'"


def test_a_finished_process_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    start = process_start(child.pid)
    assert process_alive(child.pid, start)
    child.kill()
    child.wait()
    assert not process_alive(child.pid, start)


@pytest.fixture
def half_alive_server():
    """An HTTP server on 127.0.0.1 that answers /health and stalls on every other request."""
    import http.server
    import threading
    import time

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/health":
                time.sleep(30)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_server_whose_api_stalls_is_one_line_within_seconds(half_alive_server):
    import time

    start = time.perf_counter()
    with pytest.raises(ConfigError, match=f"^tracking.uri: the MLflow server at {half_alive_server} did not answer "
                                          f"GET /api/2.0/mlflow/experiments/search"):
        store.connect(half_alive_server)
    assert time.perf_counter() - start < 15


def running_run(uri, tags: dict) -> str:
    client = store.connect(uri)
    return client.create_run(store.experiment_id(client, "harness"), tags=tags).info.run_id


def test_a_run_of_another_host_whose_heartbeat_is_stale_is_marked_killed(uri):
    import time

    stale = running_run(uri, {names.HOST: "other-node", names.PID: "1", names.PROCESS_START: "1",
                              names.HEARTBEAT: f"{time.time() - store.STALE_SECONDS - 60:.0f}"})
    live = running_run(uri, {names.HOST: "other-node", names.PID: "1", names.PROCESS_START: "1",
                             names.HEARTBEAT: f"{time.time():.0f}"})
    client = MlflowClient(uri)
    assert store.close_abandoned(client, store.experiment_id(client, "harness")) == [stale]
    assert client.get_run(stale).data.tags[names.ERROR] == "process 1 on other-node ended without closing the run"
    assert client.get_run(live).info.status == "RUNNING"  # another host's run that still beats is left alone


def test_a_store_call_waits_for_a_server_that_comes_back():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("Connection refused")
        return "written"

    assert store.patiently(10, flaky) == "written" and len(calls) == 3


def test_a_store_call_that_keeps_failing_raises_once_patience_runs_out():
    import time

    def down():
        raise ConnectionError("Connection refused")

    start = time.perf_counter()
    with pytest.raises(ConnectionError):
        store.patiently(2, down)
    assert 2 <= time.perf_counter() - start < 5


def test_a_job_whose_run_is_marked_killed_by_another_process_stops_at_its_next_epoch(uri, monkeypatch):
    import threading
    import time

    from harness import signals

    monkeypatch.setattr(store, "RUN_WATCH_SECONDS", 0.2)
    client = MlflowClient(uri)

    def the_launcher_stops_the_sweep():
        deadline = time.time() + 60
        while time.time() < deadline:
            found = client.get_experiment_by_name("harness")
            runs = client.search_runs([found.experiment_id]) if found else []
            if runs and runs[0].data.metrics:
                store.end(client, runs[0].info.run_id, "KILLED", "killed by SIGINT")
                return
            time.sleep(0.1)

    threading.Thread(target=the_launcher_stops_the_sweep, daemon=True).start()
    with pytest.raises(signals.Stopped, match="its run was marked KILLED: killed by SIGINT"):
        harness.train_from_config([*SMALL, "epochs=1000000", f"tracking.uri={uri}"], track=True)
    assert the_run(uri).info.status == "KILLED"


def schema_and_rows(path) -> tuple:
    """Every table's definition and rows, but the Default experiment's times and artifact folder."""
    with sqlite3.connect(path) as db:
        schema = db.execute("select type, name, sql from sqlite_master order by name").fetchall()
        rows = {name: db.execute(f'select * from "{name}" order by 1').fetchall()
                for kind, name, _ in schema if kind == "table" and name != "experiments"}
        experiments = db.execute("select experiment_id, name, lifecycle_stage from experiments").fetchall()
    return schema, rows, experiments


def test_a_new_store_copied_from_the_template_is_the_store_mlflow_migrates(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "TEMPLATES", tmp_path / "cache")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    store.connect(f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}")  # migrated by MLflow; kept as the template
    monkeypatch.setattr("mlflow.store.db.utils._initialize_tables", lambda engine: pytest.fail("migrated"))
    monkeypatch.chdir(tmp_path / "b")
    client = store.connect(f"sqlite:///{tmp_path / 'b' / 'mlflow.db'}")
    assert schema_and_rows(tmp_path / "a" / "mlflow.db") == schema_and_rows(tmp_path / "b" / "mlflow.db")
    assert client.get_experiment("0").artifact_location == str(tmp_path / "b" / "mlruns" / "0")


def test_a_template_mlflow_cannot_open_is_replaced_by_a_migrated_store(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "TEMPLATES", tmp_path / "cache")
    store.TEMPLATES.mkdir()
    store.template().write_bytes(b"not a database")
    client = store.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert store.experiment_id(client, "harness")
    assert store.template().read_bytes().startswith(b"SQLite format 3")


def test_a_store_cut_short_while_copied_from_the_template_is_made_anew(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "TEMPLATES", tmp_path / "cache")
    store.connect(f"sqlite:///{tmp_path / 'first.db'}")  # the template
    (tmp_path / "mlflow.db").write_bytes(store.template().read_bytes()[:200_000])  # a kill mid-copy
    client = store.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert store.experiment_id(client, "harness")


def test_a_job_of_a_sweep_takes_at_most_12_transactions_of_the_store_6_of_them_writes(uri):
    """Counted on the store's engine: MLflow opens a transaction for each part of a call (its
    log_batch up to four); the job asks nothing twice and nothing the sweep asked up front."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from harness.job import Context, run

    client = store.connect(uri)
    parent = client.create_run(store.experiment_id(client, "harness")).info.run_id
    transactions = []  # for each, whether it wrote

    def begin(connection):
        connection.info["writes"] = False

    def execute(connection, cursor, statement, *rest):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            connection.info["writes"] = True

    def commit(connection):
        transactions.append(connection.info["writes"])

    listeners = [(Engine, "begin", begin), (Engine, "before_cursor_execute", execute), (Engine, "commit", commit)]
    for listener in listeners:
        event.listen(*listener)
    try:
        run(harness.compose([*SMALL, "epochs=2", f"tracking.uri={uri}", "progress=false"]),
            Context(sweep=parent, resume=True))
    finally:
        for listener in listeners:
            event.remove(*listener)
    assert the_run_named(uri, "lr=3.0,batch_size=10,seed=0").info.status == "FINISHED"
    assert len(transactions) <= 12 and sum(transactions) <= 6


def test_the_ui_command_gives_the_address_of_the_experiments_runs():
    page = "/#/experiments/3?workflowType=machine_learning"
    assert ui_command("sqlite:////tmp/mlflow.db", "3") == \
        f"mlflow ui --backend-store-uri sqlite:////tmp/mlflow.db  # then open http://127.0.0.1:5000{page}"
    assert ui_command("http://host:5000/", "3") == f"open http://host:5000{page} in a browser"


def test_a_new_experiment_is_tagged_as_model_development_for_the_mlflow_ui(uri):
    client = store.connect(uri)
    experiment = client.get_experiment(store.experiment_id(client, "new"))
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_run_records_its_cores_blas_libraries_and_threads(uri):
    harness.train_from_config([*SMALL, "epochs=1", f"tracking.uri={uri}"], track=True)
    tags = the_run(uri).data.tags
    blas = [library for library in threadpool_info() if library["user_api"] == "blas"]
    assert tags[names.CPU_COUNT] == str(os.cpu_count())
    assert tags[names.BLAS].split("; ") == sorted({f"{library['internal_api']} {library['version']}" for library in blas})
    assert tags[names.BLAS_NUM_THREADS] == ", ".join(sorted({str(library["num_threads"]) for library in blas}, key=int))


def test_a_run_records_the_cpu_model_the_kernel_names(uri):
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = {line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")}
    if not models:
        pytest.skip("/proc/cpuinfo names no CPU model here: the harness takes Python's platform.processor()")
    harness.train_from_config([*SMALL, "epochs=1", f"tracking.uri={uri}"], track=True)
    assert the_run(uri).data.tags[names.CPU_MODEL] in models


def test_a_run_records_the_blas_threads_it_was_limited_to(uri):
    harness.train_from_config([*SMALL, "epochs=1", "blas_threads=1", f"tracking.uri={uri}"], track=True)
    assert the_run(uri).data.tags[names.BLAS_NUM_THREADS] == "1"


def test_a_run_records_the_load_average_as_training_starts_and_as_it_ends(uri, monkeypatch):
    readings = iter([(1.25, 1.0, 1.0), (2.5, 1.0, 1.0)])
    monkeypatch.setattr(os, "getloadavg", lambda: next(readings))
    harness.train_from_config([*SMALL, "epochs=1", f"tracking.uri={uri}"], track=True)
    tags = the_run(uri).data.tags
    assert (tags[names.LOAD_START], tags[names.LOAD_END]) == ("1.25", "2.50")
