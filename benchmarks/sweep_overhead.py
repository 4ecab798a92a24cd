"""Where a sweep's time goes: runs a study through the command line in a new folder, then
measures in this process what its jobs cost apart: training and evaluation (the same configs,
untracked), composing one job's config, loading the data, recording a run in MLflow, and starting
Python with the harness. Prints the wall time, the per-job overhead (wall time minus training and
evaluation, over the jobs) and that breakdown.

    python benchmarks/sweep_overhead.py                            # lr_sweep, sequential launcher
    python benchmarks/sweep_overhead.py --launcher parallel
    python benchmarks/sweep_overhead.py --study nielsen_ch1 --launcher parallel --data-root ../shared/data/mnist
    python benchmarks/sweep_overhead.py --study nielsen_ch1 --launcher parallel --data-root ../shared/data/mnist epochs=3
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from harness import job, store
from harness.config import CONF
from harness.data import load
from hydra_plugins.harness_sweeper import expand


def jobs_of(study: str, extra: list[str]) -> list[list[str]]:
    arguments = [f"+experiment={study}", *extra]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        config = compose("config", overrides=arguments, return_hydra_config=True)
        return expand(GlobalHydra.instance().config_loader(), config.hydra.sweeper.params, arguments)


def composed(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=overrides)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="lr_sweep")
    parser.add_argument("--launcher", default="sequential", choices=["sequential", "parallel"])
    parser.add_argument("--data-root", help="data.root for MNIST studies")
    parser.add_argument("overrides", nargs="*", help="more overrides for every job, e.g. epochs=2")
    args = parser.parse_args()
    extra = [f"data.root={Path(args.data_root).resolve()}"] if args.data_root else []
    extra += args.overrides
    command = [sys.executable, "-m", "harness", "-m", f"+experiment={args.study}", f"launcher={args.launcher}", *extra]
    with tempfile.TemporaryDirectory() as folder:
        wall, done = timed(subprocess.run, command, cwd=folder, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"the sweep failed:\n{done.stderr[-3000:]}")
        jobs = jobs_of(args.study, extra)
        compose_time, configs = timed(lambda: [composed(overrides) for overrides in jobs])
        data_time, _ = timed(load, OmegaConf.to_container(configs[0].data, resolve=True))
        fits = []
        for cfg in configs:
            dataset, network, sampling_rng = job.build(cfg)
            fits.append(timed(job.fit, cfg, dataset, network, sampling_rng)[0])
        compute = sum(fits)
        uri = f"sqlite:///{folder}/overhead.db"
        store.connect(uri)
        record = 0.0
        for cfg, fit in zip(configs[:5], fits):
            cfg.tracking.uri, cfg.progress = uri, False
            record += timed(job.run, cfg, job.Context())[0] - fit
        startup, _ = timed(subprocess.run, [sys.executable, "-c", "import harness.__main__, mlflow"], check=True)
    n = len(jobs)
    workers = "" if args.launcher == "sequential" else " (its jobs run side by side: compare per job with care)"
    print(f"{args.study}, launcher={args.launcher}: {n} jobs{workers}")
    print(f"wall time of the sweep:            {wall:7.1f} s")
    print(f"training and evaluation, all jobs: {compute:7.1f} s (the same configs untracked, in one process)")
    print(f"overhead per job:                  {(wall - compute) / n:7.3f} s  (target ≤ 0.25 s, sequential)")
    print("what one job costs besides training, measured apart:")
    print(f"  composing its config once:       {compose_time / n:7.3f} s (a sweep does it once a job, a worker process once more)")
    print(f"  recording its run in MLflow:     {record / 5:7.3f} s (a tracked job less its training, over 5 jobs;"
          " noisy where training takes seconds)")
    print(f"  loading the data (once a process): {data_time:5.3f} s")
    print(f"  starting Python with the harness:  {startup:5.3f} s (once a sweep, and once a worker)")


if __name__ == "__main__":
    main()
