"""Faults as they happen, through the real command line: a full disk, SIGKILL of a parallel
sweep's main process, SIGINT/SIGTERM of a parallel sweep, a worker killed, two first launches at
once, a job that fails while building, a server that stalls. After each, the store is read back
and every run must say what really happened."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import harness

pytestmark = pytest.mark.slow

BROKEN_BUILD = """
import harness.job
from harness.__main__ import cli
from harness.errors import ConfigError

real_build = harness.job.build

def build(cfg):
    if list(cfg.model.hidden) == [4]:
        raise ConfigError("data.root: train-images-idx3-ubyte.gz cannot be read (injected)")
    return real_build(cfg)

harness.job.build = build
cli()
"""


def rows(folder: Path, query: str) -> list[tuple]:
    with sqlite3.connect(f"file:{folder / 'mlflow.db'}?mode=ro", uri=True) as db:
        return db.execute(query).fetchall()


def job_runs(folder: Path) -> list[tuple[str, str, str | None]]:
    """(name, status, error) of every job's run, deleted ones left out, sorted."""
    return sorted(rows(folder, "select r.name, r.status, (select value from tags t where t.run_uuid = r.run_uuid "
                               "and t.key = 'error') from runs r where r.lifecycle_stage = 'active' and not exists "
                               "(select 1 from tags t where t.run_uuid = r.run_uuid and t.key = 'role')"))


def epochs_of(folder: Path, name: str, status: str) -> list[int]:
    """The epochs recorded by the runs of this name and status."""
    return [step for (step,) in rows(folder, f"select m.step from metrics m join runs r on r.run_uuid = m.run_uuid "
                                             f"where r.name = '{name}' and r.status = '{status}' "
                                             f"and m.key = 'train_cost' order by m.step")]


def sweep_status(folder: Path) -> list[str]:
    return [status for (status,) in rows(folder, "select status from runs r where exists (select 1 from tags t "
                                                 "where t.run_uuid = r.run_uuid and t.key = 'role')")]


def wait_for_runs_with_metrics(folder: Path, count: int, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if rows(folder, "select count(distinct run_uuid) from metrics")[0][0] >= count:
                return
        except sqlite3.OperationalError:  # no store yet, or its tables are being created
            pass
        time.sleep(0.5)
    raise AssertionError(f"fewer than {count} runs started")


def start(folder: Path, *args: str) -> subprocess.Popen:
    """`python -m harness ARGS` in its own process group (a terminal's Ctrl-C reaches the whole group)."""
    return subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=folder, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def mounted(folder: Path, size: str, read_only: bool = False):
    """A file system of `size` at `folder` (a full disk to be), unmounted when the test ends."""
    folder.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]).returncode:
        pytest.skip("needs root to mount a small file system")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)])


def grow(folder: Path) -> None:
    """Free space, as a user does once the disk is full."""
    subprocess.run(["mount", "-o", "remount,size=64m", str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    yield from mounted(tmp_path / "disk", "3m")


@pytest.fixture
def tiny_disk(tmp_path):
    yield from mounted(tmp_path / "tiny", "300k")


@pytest.fixture
def read_only(tmp_path):
    yield from mounted(tmp_path / "read-only", "64k", read_only=True)


@pytest.mark.parametrize("sweep", [(), ("-m",)])
def test_a_read_only_working_folder_is_one_line(read_only, sweep):
    result = harness(*sweep, "epochs=1", cwd=read_only, check=False)
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "(Read-only file system)" in line


def test_a_full_disk_never_leaves_a_finished_run_short_of_its_epochs_and_a_relaunch_completes(small_disk):
    sweep = ("-m", "lr=0.1,0.3,1", "batch_size=1", "epochs=10", "measure.batch_cost_every=1")
    first = harness(*sweep, cwd=small_disk, check=False)
    assert first.returncode == 1
    assert "Traceback" not in first.stderr and len(first.stderr.strip().splitlines()) <= 4, first.stderr[-3000:]
    for name, status, error in job_runs(small_disk):
        assert status in ("FAILED", "RUNNING") and len(epochs_of(small_disk, name, status)) < 11
        assert status == "RUNNING" or "disk is full" in error or "No space left" in error
    grow(small_disk)
    harness(*sweep, cwd=small_disk)
    finished = [name for name, status, _ in job_runs(small_disk) if status == "FINISHED"]
    assert sorted(finished) == sorted(f"lr={lr},batch_size=1,epochs=10,measure.batch_cost_every=1" for lr in ("0.1", "0.3", "1"))
    assert all(epochs_of(small_disk, name, "FINISHED") == list(range(11)) for name in finished)
    assert "RUNNING" not in [status for _, status, _ in job_runs(small_disk)]


def test_a_first_launch_on_a_disk_too_small_for_the_store_is_one_line_and_the_next_works(tiny_disk):
    result = harness("epochs=1", cwd=tiny_disk, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: tracking.uri: cannot create an MLflow store at")
    grow(tiny_disk)
    assert "finished: epochs=1 after 1 epochs" in harness("epochs=1", cwd=tiny_disk).stdout


def test_sigkill_of_a_parallel_sweep_stops_its_workers_and_a_relaunch_trains_each_config_once(tmp_path):
    # jobs of several seconds: one that ends within the second its worker takes to notice is FINISHED, truly
    sweep = ("-m", "launcher=parallel", "lr=1,2,3,4", "epochs=1500")
    process = start(tmp_path, *sweep)
    wait_for_runs_with_metrics(tmp_path, 2)
    workers = children_of(process.pid)
    process.kill()
    process.wait()
    harness(*sweep, cwd=tmp_path)
    runs = job_runs(tmp_path)
    assert sorted(name for name, status, _ in runs if status == "FINISHED") == [f"lr={lr},epochs=1500" for lr in (1, 2, 3, 4)]
    orphans = [(status, error) for _, status, error in runs if status != "FINISHED"]
    assert orphans and all(o == ("KILLED", f"the sweep's launching process {process.pid} is gone") for o in orphans)
    assert not [pid for pid in workers if alive(pid)]
    assert sweep_status(tmp_path) == ["KILLED", "FINISHED"]


@pytest.mark.parametrize("signum, whom", [(signal.SIGTERM, "the main process"), (signal.SIGINT, "the process group")])
def test_a_signal_to_a_parallel_sweep_ends_every_run_killed_before_it_exits(tmp_path, signum, whom):
    process = start(tmp_path, "-m", "launcher=parallel", "lr=1,2,3,4", "epochs=100000")
    wait_for_runs_with_metrics(tmp_path, 2)
    os.kill(process.pid, signum) if whom == "the main process" else os.killpg(process.pid, signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr[-2000:]
    runs = job_runs(tmp_path)
    assert len(runs) == 2 and {(status, error) for _, status, error in runs} == {("KILLED", f"killed by {signum.name}")}
    assert sweep_status(tmp_path) == ["KILLED"]
    assert stderr.strip().splitlines()[-1] == f"stopped: killed by {signum.name}; the runs of this launch are marked KILLED"


def test_a_killed_worker_ends_the_sweep_with_one_line_and_a_relaunch_completes_it(tmp_path):
    sweep = ("-m", "launcher=parallel", "lr=1,2,3", "epochs=300")
    process = start(tmp_path, *sweep)
    wait_for_runs_with_metrics(tmp_path, 2)
    os.kill(max(children_of(process.pid)), signal.SIGKILL)  # the launching process's children are its workers
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert stderr.strip().splitlines()[-1].startswith("error: the sweep stopped: BrokenProcessPool")
    assert "RUNNING" not in [status for _, status, _ in job_runs(tmp_path)]
    harness(*sweep, cwd=tmp_path)
    assert sorted(name for name, status, _ in job_runs(tmp_path) if status == "FINISHED") == \
        [f"lr={lr},epochs=300" for lr in (1, 2, 3)]


def test_two_first_launches_at_once_both_succeed_and_train_each_config_once(tmp_path):
    sweep = ("-m", "lr=1,3", "seed=0,1", "epochs=20")
    first, second = start(tmp_path, *sweep), start(tmp_path, *sweep)
    outputs = [process.communicate(timeout=300) for process in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), outputs
    finished = [name for name, status, _ in job_runs(tmp_path) if status == "FINISHED"]
    assert sorted(finished) == sorted(f"lr={lr},seed={seed},epochs=20" for lr in (1, 3) for seed in (0, 1))
    assert sweep_status(tmp_path) == ["FINISHED", "FINISHED"]  # two sweeps, each with its own id


def test_a_sweep_launched_from_a_path_with_an_apostrophe_runs_its_jobs(tmp_path):
    folder = tmp_path / "it's here"
    folder.mkdir()
    result = harness("-m", "lr=1,3", "epochs=2", cwd=folder)
    assert "2 jobs: 2 finished" in result.stdout
    assert "mlflow ui --backend-store-uri 'sqlite:///" in result.stdout


def test_a_job_that_fails_before_training_is_a_failed_run_and_the_sweep_goes_on(tmp_path):
    (tmp_path / "broken_build.py").write_text(BROKEN_BUILD)
    result = harness("-m", "model.hidden=[3],[4],[5]", "data=blobs", "epochs=2", cwd=tmp_path,
                     check=False, module="broken_build")
    assert result.returncode == 1 and "1 of 3 jobs did not finish" in result.stderr
    runs = {name: (status, error) for name, status, error in job_runs(tmp_path)}
    assert runs["model.hidden=[4],data=blobs,epochs=2"] == ("FAILED", "ConfigError: data.root: train-images-idx3-ubyte.gz "
                                                                      "cannot be read (injected)")
    assert runs["model.hidden=[5],data=blobs,epochs=2"][0] == "FINISHED"  # the job after the failure ran
    assert sweep_status(tmp_path) == ["FINISHED"]


def test_a_sweep_with_a_job_too_big_for_the_memory_is_refused_before_any_job(tmp_path):
    result = harness("-m", "model.hidden=[3],[10000000000]", "data=blobs", "epochs=2", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: model.hidden: [10000000000] needs at least")
    assert not (tmp_path / "mlflow.db").exists()
