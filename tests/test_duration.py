"""A job's expected training time, before it starts: beyond `max_hours` it is refused in one line
naming the setting; the dry run and the first progress line say it."""

import pytest

from conftest import harness
from harness import compose, duration
from harness.config import check
from harness.errors import ConfigError
from harness.job import build


SMALL = ["data=blobs", "data.n=200", "model.hidden=[4]"]


def small_sample():
    return duration.sample(build(compose(SMALL))[0])


def test_a_job_expected_to_train_beyond_max_hours_is_refused_naming_the_setting():
    with pytest.raises(ConfigError, match=r"^max_hours: 1000000000000 epochs would train for about .* years .*"
                                          r"beyond max_hours=24; lower epochs or the budget, or raise max_hours"):
        duration.check(compose([*SMALL, "epochs=1000000000000"]), small_sample())


def test_max_hours_null_lifts_the_limit_and_the_estimate_grows_with_the_epochs():
    data = small_sample()
    short = duration.check(compose([*SMALL, "epochs=10", "max_hours=null"]), data)
    long = duration.check(compose([*SMALL, "epochs=1000000000000", "max_hours=null"]), data)
    assert long == pytest.approx(short * 1e11)


def test_max_hours_must_be_positive():
    with pytest.raises(ConfigError, match=r"^max_hours: 0.0 must be a number of hours > 0, or null for no limit"):
        check(compose(["max_hours=0"]))


@pytest.mark.slow
def test_huge_epochs_on_the_command_line_are_one_line_at_once(workdir):
    result = harness(*SMALL, "epochs=1000000000000", cwd=workdir, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: max_hours: 1000000000000 epochs would train for about")
    assert not (workdir / "mlflow.db").exists()


@pytest.mark.slow
def test_the_dry_run_and_the_first_progress_line_say_the_expected_time(workdir):
    dry = harness(*SMALL, "epochs=3", "dry_run=true", cwd=workdir).stdout
    assert "training expected to take " in dry and not (workdir / "mlflow.db").exists()
    first = harness(*SMALL, "epochs=3", cwd=workdir).stdout.splitlines()[0]
    assert first.startswith("epoch 0/3: ") and "(training expected to take " in first
    swept = harness("-m", *SMALL, "epochs=3", "lr=1,2", "dry_run=true", cwd=workdir).stdout
    assert "2 jobs, training expected to take " in swept
