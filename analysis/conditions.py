"""The conditions a report's seconds were measured under, said in one line, with a warning where
they differ between the runs compared: another CPU model, number of cores, BLAS library or
number of BLAS threads, or load averages at the start of training further apart than
`LOAD_SPREAD` per core. A run records them as tags (harness.tracking.timing_conditions).
"""

from __future__ import annotations

import pandas as pd

from harness import names

from .loader import find_experiment, search_all
from .uncertainty import span

# load average per core at the start of training: runs further apart than this shared the cores
# with enough other work that their seconds do not compare
LOAD_SPREAD = 0.5
MACHINE = {names.CPU_MODEL: "CPU model", names.CPU_COUNT: "number of cores", names.BLAS: "BLAS library",
           names.BLAS_NUM_THREADS: "BLAS threads"}
COLUMNS = [*MACHINE, names.LOAD_START, names.LOAD_END]


def read(client, experiment: str, run_ids) -> pd.DataFrame:
    """A row per run: its id and its condition tags (None where it recorded none)."""
    ids = ", ".join(repr(run_id) for run_id in run_ids)
    runs = search_all(client, find_experiment(client, experiment).experiment_id, f"attributes.run_id IN ({ids})")
    return pd.DataFrame([{"run_id": run.info.run_id, **{key: run.data.tags.get(key) for key in COLUMNS}} for run in runs],
                        columns=["run_id", *COLUMNS])


def three_digits(value: float) -> str:
    return f"{value:.3g}"


def describe(conditions: pd.DataFrame) -> str:
    """One line: what the seconds of these runs were measured on, and ⚠ what differs between them."""
    recorded = conditions.dropna(subset=[names.CPU_MODEL])
    if recorded.empty:
        return f"**Timing.** The runs ({len(conditions)}) recorded no conditions for their seconds (CPU, BLAS, load)."
    found = {key: recorded[key].value_counts() for key in MACHINE}
    machine = lambda key: " or ".join(f"{value} ({count} run{'s' if count > 1 else ''})" if len(found[key]) > 1 else value
                                      for value, count in found[key].items())
    cores = recorded[names.CPU_COUNT].astype(float)
    start, end = recorded[names.LOAD_START].astype(float), recorded[names.LOAD_END].dropna().astype(float)
    per_core = start / cores
    line = (f"**Timing.** Seconds of training ({names.TRAIN_TIME}) measured on {machine(names.CPU_MODEL)}, "
            f"{machine(names.CPU_COUNT)} cores, BLAS {machine(names.BLAS)}, BLAS threads {machine(names.BLAS_NUM_THREADS)}; "
            f"load average {span(start, three_digits)} as training started ({span(per_core, three_digits)} per core)"
            + (f", {span(end, three_digits)} as it ended" if len(end) else "") + ".")
    if len(recorded) < len(conditions):
        line += f" {len(conditions) - len(recorded)} of the {len(conditions)} runs recorded no conditions."
    differ = [MACHINE[key] for key in MACHINE if len(found[key]) > 1]
    if per_core.max() - per_core.min() >= LOAD_SPREAD:
        differ.append(f"load average at the start ({per_core.max() - per_core.min():.3g} per core apart, "
                      f"≥ {LOAD_SPREAD:g})")
    if differ:
        line += f" ⚠ The runs compared differ in {'; '.join(differ)}: their seconds do not compare as measured."
    return line


def timing(client, experiment: str, run_ids) -> str:
    """The conditions line of these runs of the experiment."""
    return describe(read(client, experiment, list(run_ids)))
