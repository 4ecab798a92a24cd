"""Where a sweep's time goes: runs a study through the command line in new folders, then measures
in this process what its jobs cost apart: training and evaluation (the same configs, untracked),
composing the jobs' configs as the sweep does, loading the data, recording a run in MLflow,
creating a new store, and starting and ending Python with the harness. Prints the wall time (the
median of `--repeat` sweeps), the per-job overhead (wall time minus training and evaluation, over
the jobs) and that breakdown.

    python benchmarks/sweep_overhead.py                            # lr_sweep, sequential launcher
    python benchmarks/sweep_overhead.py --launcher parallel
    python benchmarks/sweep_overhead.py --study nielsen_ch1 --launcher parallel --data-root ../shared/data/mnist
    python benchmarks/sweep_overhead.py --study nielsen_ch1 --launcher parallel --data-root ../shared/data/mnist epochs=3
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow.store.tracking.sqlalchemy_store  # noqa: F401 - here, as "starting Python" counts it, not "a new mlflow.db"
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from harness import job, store
from harness.config import CONF
from harness.data import load
from hydra_plugins.harness_sweeper import Composed, expand


IMPORTS = "import harness.__main__, mlflow.store.tracking.sqlalchemy_store"  # what a sweep imports


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value


def composition(study: str, extra: list[str]) -> tuple[list[list[str]], float, float, list]:
    """The jobs, and the seconds per job the sweeper's check and the launcher spend composing
    their configs (one composition by Hydra per shape of job, copies for the rest)."""
    arguments = [f"+experiment={study}", *extra]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        master = compose("config", overrides=arguments, return_hydra_config=True)
        master.hydra.sweep.dir  # noqa: B018 - resolved first, as the sweeper does
        jobs = expand(GlobalHydra.instance().config_loader(), master.hydra.sweeper.params, arguments)
        checker, launcher = (Composed(GlobalHydra.instance().config_loader()) for _ in range(2))
        checked, configs = timed(lambda: [checker.job_config(master, overrides) for overrides in jobs])
        launched, _ = timed(lambda: [launcher.load_sweep_config(master, overrides) for overrides in jobs])
    return jobs, checked / len(jobs), launched / len(jobs), configs


def new_store(folder: Path) -> tuple[float, float]:
    """Seconds to create a store that MLflow migrates, and one copied from the template."""
    store.TEMPLATES = folder / "templates"
    migrated, _ = timed(store.connect, f"sqlite:///{folder}/migrated.db")
    copied, _ = timed(store.connect, f"sqlite:///{folder}/copied.db")
    return migrated, copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="lr_sweep")
    parser.add_argument("--launcher", default="sequential", choices=["sequential", "parallel"])
    parser.add_argument("--data-root", help="data.root for MNIST studies")
    parser.add_argument("--repeat", type=int, default=3, help="sweeps to run, each in a new folder (the median counts)")
    parser.add_argument("overrides", nargs="*", help="more overrides for every job, e.g. epochs=2")
    args = parser.parse_args()
    extra = [f"data.root={Path(args.data_root).resolve()}"] if args.data_root else []
    extra += args.overrides
    command = [sys.executable, "-m", "harness", "-m", f"+experiment={args.study}", f"launcher={args.launcher}", *extra]
    walls = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as folder:
            wall, done = timed(subprocess.run, command, cwd=folder, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"the sweep failed:\n{done.stderr[-3000:]}")
            walls.append(wall)
    wall = statistics.median(walls)
    with tempfile.TemporaryDirectory() as folder:
        jobs, checked, launched, configs = composition(args.study, extra)
        data_time, _ = timed(load, OmegaConf.to_container(configs[0].data, resolve=True))
        fits = []
        for cfg in configs:
            dataset, network, sampling_rng = job.build(cfg)
            fits.append(timed(job.fit, cfg, dataset, network, sampling_rng)[0])
        compute = sum(fits)
        migrated, copied = new_store(Path(folder))
        uri = f"sqlite:///{folder}/overhead.db"
        store.connect(uri)
        record = 0.0
        for cfg, fit in zip(configs[:5], fits):
            cfg.tracking.uri, cfg.progress = uri, False
            record += timed(job.run, cfg, job.Context())[0] - fit
        python = lambda end: min(timed(subprocess.run, [sys.executable, "-c", f"{IMPORTS}; {end}"], check=True)[0]
                                 for _ in range(3))
        startup, frozen, plain = python("import os; os._exit(0)"), python("import gc; gc.freeze()"), python("pass")
    n = len(jobs)
    workers = "" if args.launcher == "sequential" else " (its jobs run side by side: compare per job with care)"
    print(f"{args.study}, launcher={args.launcher}: {n} jobs{workers}")
    print(f"wall time of the sweep:            {wall:7.1f} s  (median of {', '.join(f'{w:.1f}' for w in walls)})")
    print(f"training and evaluation, all jobs: {compute:7.1f} s  (the same configs untracked, in one process)")
    print(f"overhead per job:                  {(wall - compute) / n:7.3f} s  (target ≤ 0.25 s, sequential)")
    print("what one job costs besides training, measured apart:")
    print(f"  composing its config to check it:  {checked:5.3f} s (Hydra composes each shape of job once; the rest are copies)")
    print(f"  composing it for the launcher:     {launched:5.3f} s (in the launching process or a worker)")
    print(f"  recording its run in MLflow:       {record / 5:5.3f} s (a tracked job less its training, over 5 jobs;"
          " noisy where training takes seconds)")
    print("what a sweep or a worker process costs once:")
    print(f"  loading the data:                  {data_time:5.3f} s")
    print(f"  a new mlflow.db:                   {copied:5.3f} s (copied from the template; {migrated:.3f} s where MLflow "
          "migrates it, the first time on a machine)")
    print(f"  starting Python with the harness:  {startup:5.3f} s (the fastest of 3)")
    print(f"  ending it:                         {max(frozen - startup, 0):5.3f} s ({max(plain - startup, 0):.3f} s without "
          "the gc.freeze() at the end of `python -m harness`)")


if __name__ == "__main__":
    main()
