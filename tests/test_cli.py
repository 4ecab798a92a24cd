"""End to end through the real command line, as a user runs it."""

import sqlite3

import pytest

from conftest import harness

pytestmark = pytest.mark.slow


def test_sweep_tracks_one_finished_run_per_job_and_draws_the_figure(workdir):
    harness("-m", "lr=0.5,3", "batch_size=10,full", "epochs=3", cwd=workdir)
    db = sqlite3.connect(workdir / "mlflow.db")
    statuses = db.execute("select status from runs where run_uuid in "
                          "(select run_uuid from params where key = 'lr')").fetchall()
    assert sorted(s for (s,) in statuses) == ["FINISHED"] * 4
    steps = db.execute("select run_uuid, count(*) from metrics where key = 'train_cost' group by run_uuid").fetchall()
    assert [count for _, count in steps] == [4] * 4  # epochs 0 (initial) to 3

    harness("convergence", "--experiment", "harness", "--out", "figure.png", cwd=workdir, module="analysis")
    assert (workdir / "figure.png").stat().st_size > 10_000


def test_bad_setting_stops_with_one_line_before_any_run(workdir):
    result = harness("lr=0", cwd=workdir, check=False)
    assert result.returncode != 0
    assert "lr: 0.0 must be a finite number > 0" in result.stderr
    assert not (workdir / "mlflow.db").exists()
