"""Where a sweep's time goes beyond training: runs a study through the command line, each time
in a new folder, and reads back from its store the jobs' own `train_time` and `eval_time`. For
each arm (a launcher, and with --base the same launcher running another checkout's code) it
prints the wall time and the time per job beyond training, in seconds of a worker, counted two
ways: beyond `train_time` ((wall × workers − Σ train_time) / jobs), and beyond training and
evaluation ((wall × workers − Σ train_time − Σ eval_time) / jobs); for a parallel launcher also
the wall time against the compute per worker (Σ train_time / workers, and with Σ eval_time).
With jobs of equal length a parallel sweep's last round may leave a worker idle: that counts.
Arms alternate over --rounds rounds (at least 5).
Targets (sequential lr_sweep): ≤ 0.15 s per job beyond training, evaluation counted; parallel
never slower than sequential; nielsen_ch1 within 1.3× of its training compute per worker.

    python benchmarks/sweep_overhead.py                                   # lr_sweep, sequential and parallel
    python benchmarks/sweep_overhead.py --launcher sequential --base /tmp/i20-base   # against another checkout
    python benchmarks/sweep_overhead.py --study nielsen_ch1 --launcher parallel --data-root ../shared/data/mnist
    python benchmarks/sweep_overhead.py --study nielsen_ch1 --launcher parallel --data-root ../shared/data/mnist epochs=3
"""

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import load, pin_blas, rounds, spread, timed, with_code

REPO = Path(__file__).resolve().parent.parent


def job_times(folder: Path) -> tuple[int, float, float | None]:
    """The sweep's jobs: how many, their Σ train_time and Σ eval_time (None where the code does
    not record it), read from the last epoch of each job's run."""
    with sqlite3.connect(f"file:{folder / 'mlflow.db'}?mode=ro", uri=True) as db:
        runs = db.execute("select count(*) from runs r where exists (select 1 from tags t where t.run_uuid = r.run_uuid "
                          "and t.key = 'mlflow.parentRunId')").fetchone()[0]
        totals = dict(db.execute("select key, sum(value) from latest_metrics where key in ('train_time', 'eval_time') "
                                 "group by key").fetchall())
    return runs, totals.get("train_time", 0.0), totals.get("eval_time")


def arm(command: list[str], code: Path, workers: int):
    """One sweep of `command` running the code of the checkout at `code`, in a new folder."""
    environment = with_code(code)

    def run() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as folder:
            wall, done = timed(subprocess.run, command, cwd=folder, capture_output=True, text=True, env=environment)
            if done.returncode:
                sys.exit(f"the sweep failed:\n{done.stderr[-3000:]}")
            jobs, train, evaluation = job_times(Path(folder))
        # per job, in seconds of a worker: the workers' time (wall × workers) less the jobs' own
        figures = {"wall": wall, "jobs": jobs, "train": train, "beyond_train": (wall * workers - train) / jobs,
                   "per_worker": wall / (train / workers)}
        if evaluation is not None:
            figures |= {"eval": evaluation, "beyond_train_eval": (wall * workers - train - evaluation) / jobs,
                        "per_worker_eval": wall / ((train + evaluation) / workers)}
        return figures

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="lr_sweep")
    parser.add_argument("--launcher", nargs="+", default=["sequential", "parallel"], choices=["sequential", "parallel"])
    parser.add_argument("--base", type=Path, help="another checkout whose code runs the same sweeps, alternating")
    parser.add_argument("--data-root", help="data.root for MNIST studies")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every arm (at least 5)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads of every process")
    parser.add_argument("overrides", nargs="*", help="more overrides for every job, e.g. epochs=2")
    args = parser.parse_args()
    pinned = pin_blas(args.threads)
    extra = [f"data.root={Path(args.data_root).resolve()}"] if args.data_root else []
    codes = {"this checkout": REPO} | ({f"base {args.base}": args.base.resolve()} if args.base else {})
    arms = {}
    for launcher in args.launcher:
        workers = 1 if launcher == "sequential" else len(os.sched_getaffinity(0))
        command = [sys.executable, "-m", "harness", "-m", f"+experiment={args.study}", f"launcher={launcher}",
                   *extra, *args.overrides]
        for name, code in codes.items():
            arms[f"{launcher}, {name}"] = arm(command, code, workers)
    print(f"{args.study} {' '.join(args.overrides)}: {', '.join(arms)}; {pinned}")
    print(f"at the start: {load()}")
    samples = rounds(arms, args.rounds)
    print(f"at the end:   {load()}\n")
    for name, figures in samples.items():
        print(f"{name}: {int(figures['jobs'][0])} jobs")
        print(f"  wall time of the sweep:          {spread(figures['wall'])}")
        print(f"  Σ train_time of its jobs:        {spread(figures['train'])}")
        print(f"  Σ eval_time of its jobs:         {spread(figures.get('eval', []))}")
        print(f"  per job beyond train_time:       {spread(figures['beyond_train'])}  (evaluation counted; target ≤ 0.15 s, "
              f"sequential lr_sweep)")
        print(f"  per job beyond training and evaluation: {spread(figures.get('beyond_train_eval', []))}")
        if name.startswith("parallel"):
            print(f"  wall / (Σ train_time / workers): {spread(figures['per_worker'], '×')}  (target ≤ 1.3 on nielsen_ch1)")
            print(f"  wall / ((Σ train_time + Σ eval_time) / workers): {spread(figures.get('per_worker_eval', []), '×')}")


if __name__ == "__main__":
    main()
