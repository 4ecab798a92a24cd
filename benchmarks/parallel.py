"""A sweep of CPU-bound runs, launched sequentially and with `launcher=parallel` (joblib, one worker
per core, one BLAS thread each), both through the command line in the same run; prints the wall
times and the speed-up. Target on a 2-core machine: at least 1.8×.

    python benchmarks/parallel.py            # 8 jobs of 800 epochs at m = 1 on digits, about 5 minutes
    python benchmarks/parallel.py --epochs 5 # a quick check
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time


def sweep(epochs: int, jobs: int, *launcher: str) -> float:
    """Wall time of one sweep of `jobs` runs, tracked in a fresh store."""
    lrs = ",".join(str(0.1 * (i + 1)) for i in range(jobs))
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness", "-m", *launcher, f"lr={lrs}", "batch_size=1",
                        f"epochs={epochs}", "model.hidden=[100]"], cwd=folder, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=800)
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args()
    cores = os.cpu_count()
    sequential = sweep(args.epochs, args.jobs)
    parallel = sweep(args.epochs, args.jobs, "launcher=parallel")
    print(f"{args.jobs} jobs × {args.epochs} epochs (digits, [64, 100, 10], m = 1) on {cores} cores")
    print(f"sequential: {sequential:.1f} s")
    print(f"parallel:   {parallel:.1f} s  (launcher=parallel)")
    print(f"speed-up:   {sequential / parallel:.2f}×  (target ≥ 1.8× on 2 cores)")


if __name__ == "__main__":
    main()
