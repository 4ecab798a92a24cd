"""The command line under drawn input: settings from the schema with valid and invalid values,
unknown keys, group typos, odd strings, huge and negative numbers. Whatever is drawn, the
command ends in one of two ways: exit 0 with every run FINISHED (nothing tracked by a dry run),
or a non-zero exit with at most 3 lines on stderr, no traceback, and no run left RUNNING.

Each example runs `python -m harness`'s entry point in this process, in a new folder, on a few
dozen blob inputs for a few epochs. `HYPOTHESIS_PROFILE=long python -m pytest tests/test_fuzz.py`
draws many more examples than CI does; each input it finds goes into `FOUND` below."""

import contextlib
import gc
import os
import sqlite3
import sys
import tempfile
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import store, sweep
from harness.__main__ import cli
from harness.config import CONF, Config, ModelConfig, StudyConfig, TrackingConfig
from harness.data import DATASETS
from harness.measure import Measurements

# each example resets what it uses of the function-scoped fixtures (capfd, monkeypatch) itself
QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, suppress_health_check=QUIET)
settings.register_profile("long", max_examples=1000, deadline=None, suppress_health_check=QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# what every example starts from: small and quick; a drawn setting replaces the same key
# ({folder} is the example's own: MLflow keeps a store per URI for the process, which a relative
# path would tie to the first example's folder)
BASE = {"data": "blobs", "data.n": "40", "data.validation": "10", "data.test": "10", "epochs": "2",
        "model.hidden": "[3]", "progress": "false", "tracking.uri": "sqlite:///{folder}/mlflow.db"}
# settings left out: where a valid value would make an example slow or reach outside its folder
LEFT_OUT = {"launcher", "blas_threads", "max_hours", "data.root", "data.download", "tracking.patience"}

HUGE = ["1000000000000", "-1000000000000", "1e400", "-1e400", "nan", "inf", "-inf", str(2**64), "-1", "0"]
ODD = ["''", "x" * 600, "${oops}", "'${oc.env:NOPE}'", "[1,2", "'a b'", "é", "null", "true", "'../../x'", "/tmp"]
CHOICES = {"model.activation": ["sigmoid", "tanh", "relu", "identity"], "model.output": ["sigmoid", "identity"],
           "model.cost": ["quadratic", "cross_entropy"], "model.init": ["normal", "scaled"],
           "model.dtype": ["float64", "float32"], "last_batch": ["keep", "drop"], "batch_size": ["full", "1", "7", "40"],
           "tracking.uri": ["sqlite:///{folder}/other.db", "garbage", "http://127.0.0.1:9", "file:///tmp/x"],
           "tracking.experiment": ["harness", "study", "'../../escaped'"]}
GROUPS = {"data": sorted(p.stem for p in (CONF / "data").glob("*.yaml")),
          "model": sorted(p.stem for p in (CONF / "model").glob("*.yaml"))}


def schema_keys() -> dict[str, object]:
    """Every setting of the typed schema, `data.*` of the blob dataset, with its default."""
    keys = {}
    for prefix, schema in (("", Config), ("model.", ModelConfig), ("tracking.", TrackingConfig),
                           ("measure.", Measurements), ("study.", StudyConfig), ("data.", DATASETS["blobs"])):
        for f in fields(schema):
            default = f.default if f.default is not MISSING else f.default_factory()
            if not isinstance(default, (dict, type(None))) and not hasattr(default, "__dataclass_fields__"):
                keys[prefix + f.name] = default
            elif default is None and prefix:
                keys[prefix + f.name] = None
    return {key: default for key, default in keys.items() if key not in LEFT_OUT and key != "data.name"}


KEYS = schema_keys()


def values(key: str, default) -> st.SearchStrategy[str]:
    """Command-line values for `key`: plausible ones for its type, and the odd and the huge."""
    plausible = st.sampled_from(CHOICES[key]) if key in CHOICES else (
        st.sampled_from(["true", "false"]) if isinstance(default, bool) else
        st.integers(-2, 12).map(str) if isinstance(default, int) else
        st.floats(-10, 10).map(lambda x: f"{x:.3g}") if isinstance(default, float) else
        st.lists(st.integers(-1, 6), max_size=3).map(lambda h: f"[{','.join(map(str, h))}]") if isinstance(default, list)
        else st.text("abc_-. ", max_size=8).map(lambda t: f"'{t}'"))
    return st.one_of(plausible, st.sampled_from(HUGE), st.sampled_from(ODD))


@st.composite
def command_lines(draw) -> list[str]:
    chosen = dict(BASE)
    for key in draw(st.lists(st.sampled_from(sorted(KEYS)), max_size=4, unique=True)):
        chosen[key] = draw(values(key, KEYS[key]))
    if draw(st.booleans()):
        group = draw(st.sampled_from(sorted(GROUPS)))
        chosen[group] = draw(st.sampled_from(GROUPS[group]) | st.sampled_from(["mnsit", "defualt", "''"]))
        if chosen["data"] != "blobs":  # the blob settings are not all settings of the other datasets
            chosen = {k: v for k, v in chosen.items() if not k.startswith("data.")}
        if chosen["data"] in ("mnist", "fashion_mnist"):
            chosen["data.download"] = "false"  # never the network: no files here, so one line says so
    arguments = [f"{key}={value}" for key, value in chosen.items()]
    if draw(st.integers(0, 9)) == 0:
        arguments.append(draw(st.sampled_from(["+lrr=1", "+model.hiden=[3]", "+data.nn=3", "foo=1", "model.hidden"])))
    if draw(st.booleans()):
        arguments.append("dry_run=true")
    return arguments


def statuses(folder: Path) -> list[str]:
    """The status of every run in the folder's stores, or none."""
    found = []
    for db in folder.rglob("*.db"):
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
                found += [status for (status,) in connection.execute("select status from runs")]
        except sqlite3.Error:
            pass
    return found


def launch(arguments: list[str], folder: Path, capfd) -> tuple[int, str, str]:
    """`python -m harness ARGUMENTS` in `folder`, in this process: (exit status, stdout, stderr)."""
    capfd.readouterr()
    GlobalHydra.instance().clear()
    store._opened.clear()  # each example's sqlite:///mlflow.db is a new file in a new folder
    sweep.current = None
    previous, argv = os.getcwd(), sys.argv
    os.chdir(folder)
    sys.argv = ["harness", *(argument.replace("{folder}", str(folder)) for argument in arguments)]
    try:
        cli()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        os.chdir(previous)
        sys.argv = argv
    out, err = capfd.readouterr()
    return code, out, err


def check_outcome(arguments: list[str], capfd, monkeypatch) -> None:
    monkeypatch.setattr(gc, "freeze", lambda: None)  # every example's objects would stay for good
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        code, stdout, stderr = launch(arguments, folder, capfd)
        runs = statuses(folder)
        lines = stderr.strip().splitlines()
        if code == 0 and "nothing was trained or tracked" in stdout:  # a dry run (`dry_run=1` is one too)
            assert runs == [], runs
        elif code == 0:
            assert runs and set(runs) == {"FINISHED"}, (runs, stderr)
        else:
            assert len(lines) <= 3 and "Traceback" not in stderr, stderr
            assert "RUNNING" not in runs


# inputs found by drawing, kept as explicit examples
FOUND = [
    ["batch_size=full", "dry_run=1000000000000"],
    ["data.seed=-1"],
    ["data=blobs", "data.n_classes=0"],
    ["data=blobs", "data.n=1000000000000"],
    ["model.hidden=[100000,100000]"],
    ["epochs=1000000000000"],
    ["tracking.uri=garbage"],
    ["tracking.experiment=" + "x" * 600],
]


@pytest.mark.parametrize("arguments", FOUND)
def test_a_found_input_is_one_line_and_leaves_nothing_running(arguments, capfd, monkeypatch):
    check_outcome([f"{k}={v}" for k, v in BASE.items() if not any(a.startswith(k + "=") for a in arguments)] + arguments,
                  capfd, monkeypatch)


@given(arguments=command_lines())
def test_any_command_line_finishes_its_runs_or_stops_in_at_most_3_lines_with_nothing_running(arguments, capfd,
                                                                                               monkeypatch):
    check_outcome(arguments, capfd, monkeypatch)
