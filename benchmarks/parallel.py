"""A sweep of CPU-bound runs, launched sequentially and with `launcher=parallel` (one worker per
core, one BLAS thread each), both through the command line, the two arms alternating over
--rounds rounds (at least 5); prints the median and spread of the wall times and of each round's
speed-up. Target on a 2-core machine: at least 1.8×.

    python benchmarks/parallel.py               # 8 jobs of 200 epochs at m = 1 on digits, about 15 minutes
    python benchmarks/parallel.py --epochs 5    # a quick check
"""

import argparse
import os
import subprocess
import sys
import tempfile

from timing import load, pin_blas, rounds, spread, timed


def sweep(epochs: int, jobs: int, *launcher: str) -> float:
    """Wall time of one sweep of `jobs` runs, tracked in a fresh store."""
    lrs = ",".join(str(0.1 * (i + 1)) for i in range(jobs))
    with tempfile.TemporaryDirectory() as folder:
        wall, _ = timed(subprocess.run, [sys.executable, "-m", "harness", "-m", *launcher, f"lr={lrs}", "batch_size=1",
                                         f"epochs={epochs}", "model.hidden=[100]"], cwd=folder, check=True,
                        capture_output=True)
        return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of both arms (at least 5)")
    args = parser.parse_args()
    pinned = pin_blas(1)  # the parallel launcher's own setting, given to the sequential sweep too
    print(f"{args.jobs} jobs × {args.epochs} epochs (digits, [64, 100, 10], m = 1) on {os.cpu_count()} cores; {pinned}")
    print(f"at the start: {load()}")
    samples = rounds({"sequential": lambda: {"seconds": sweep(args.epochs, args.jobs)},
                      "parallel": lambda: {"seconds": sweep(args.epochs, args.jobs, "launcher=parallel")}}, args.rounds)
    print(f"at the end:   {load()}")
    sequential, parallel = samples["sequential"]["seconds"], samples["parallel"]["seconds"]
    print(f"sequential: {spread(sequential)}")
    print(f"parallel:   {spread(parallel)}  (launcher=parallel)")
    print(f"speed-up:   {spread([s / p for s, p in zip(sequential, parallel)], '×')}  (each round's pair; target ≥ 1.8× on 2 cores)")


if __name__ == "__main__":
    main()
