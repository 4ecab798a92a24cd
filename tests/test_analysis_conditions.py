"""The conditions line of a report: what its seconds were measured under, and a warning exactly
when the runs compared differ in CPU, cores, BLAS or its threads, or in load per core at the start
by `LOAD_SPREAD` or more."""

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from analysis import conditions
from harness import names, store

SAME = {names.CPU_MODEL: "AMD EPYC", names.CPU_COUNT: "2", names.BLAS: "openblas 0.3.30",
        names.BLAS_NUM_THREADS: "2", names.LOAD_START: "0.50", names.LOAD_END: "0.60"}


def runs(*changes: dict) -> pd.DataFrame:
    """A run with the SAME conditions, then one per `changes` with those conditions changed."""
    rows = [SAME] + [{**SAME, **change} for change in changes]
    return pd.DataFrame([{"run_id": f"r{i}", **row} for i, row in enumerate(rows)])


def test_runs_of_the_same_conditions_are_described_without_a_warning():
    line = conditions.describe(runs({}, {}))
    assert "AMD EPYC, 2 cores, BLAS openblas 0.3.30, BLAS threads 2; load average 0.5" in line
    assert "⚠" not in line


@pytest.mark.parametrize("key, value, named", [(names.CPU_MODEL, "Intel Xeon", "CPU model"),
                                               (names.CPU_COUNT, "8", "number of cores"),
                                               (names.BLAS, "mkl 2024.1", "BLAS library"),
                                               (names.BLAS_NUM_THREADS, "1", "BLAS threads")])
def test_a_run_on_another_machine_or_blas_is_warned_of(key, value, named):
    line = conditions.describe(runs({key: value}))
    assert f"⚠ The runs compared differ in {named}:" in line and f"{value} (1 run)" in line


def test_load_averages_apart_by_the_spread_per_core_are_warned_of():
    apart = 0.5 + 2 * conditions.LOAD_SPREAD  # per core on 2 cores: exactly LOAD_SPREAD
    assert "⚠ The runs compared differ in load average at the start" in conditions.describe(runs({names.LOAD_START: str(apart)}))


def test_load_averages_apart_by_less_than_the_spread_per_core_are_not_warned_of():
    near = 0.5 + 2 * conditions.LOAD_SPREAD - 0.02  # per core on 2 cores: just under LOAD_SPREAD
    assert "⚠" not in conditions.describe(runs({names.LOAD_START: str(near)}))


def test_runs_that_recorded_no_conditions_are_counted():
    unrecorded = dict.fromkeys(SAME)
    assert "1 of the 2 runs recorded no conditions" in conditions.describe(runs(unrecorded))
    assert "The runs (1) recorded no conditions" in conditions.describe(pd.DataFrame([{"run_id": "r0", **unrecorded}]))


def test_the_conditions_are_read_from_the_tags_of_the_runs_asked_for(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store.connect(uri)
    experiment = store.experiment_id(client, "timing")
    asked, other = (client.create_run(experiment, tags=SAME).info.run_id for _ in range(2))
    read = conditions.read(MlflowClient(uri), "timing", [asked])
    assert read.to_dict("records") == [{"run_id": asked, **SAME}]
