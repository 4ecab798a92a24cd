"""The harness's parallel launcher (`launcher=parallel`): a sweep's jobs on worker processes
forked from the launching process once its imports are done and its data loaded.

Hydra's joblib launcher starts each worker as a new interpreter, which imports Python, NumPy,
SciPy, Hydra and MLflow and loads the data again before its first job: seconds per sweep, more
than a short sweep's jobs take. Forked workers start with all of that in memory (shared with the
launching process until written). Each launch (a sweep's jobs, or a round of them) forks
`n_jobs` workers, which take the jobs in order and end with the launch.

Faults end as with any launcher of the harness: a signal to the launching process, or any error
of its own, kills the workers at once (the sweep's record then marks their runs); a worker that
dies stops the launch with the pool's error; a worker whose launching process is gone stops its
job and exits (`harness.signals.watch_launcher`), as does an idle worker signalled.
"""

import multiprocessing
import os
import signal
import sys
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from harness import signals, store
from harness.errors import ConfigError

WAIT_SECONDS = 0.5  # how often the launching process looks up from waiting, for a signal


@dataclass
class ParallelLauncherConf:
    _target_: str = "hydra_plugins.harness_parallel_launcher.ParallelLauncher"
    n_jobs: int = -1  # worker processes; -1: one per core


ConfigStore.instance().store(group="hydra/launcher", name="harness_parallel", node=ParallelLauncherConf,
                             provider="harness")

launching: "ParallelLauncher | None" = None  # the launcher whose jobs a forked worker runs


class ParallelLauncher(Launcher):
    def __init__(self, n_jobs: int = -1) -> None:
        if n_jobs != -1 and n_jobs < 1:
            raise ConfigError(f"hydra.launcher.n_jobs: {n_jobs} must be a positive integer or -1 (one per core)")
        self.n_jobs = len(os.sched_getaffinity(0)) if n_jobs == -1 else n_jobs

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        global launching
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        launching = self  # what the workers find in their copy of this process
        sys.stdout.flush(), sys.stderr.flush()  # else a worker's copy of their buffers is printed again
        pool = ProcessPoolExecutor(min(self.n_jobs, len(job_overrides)), multiprocessing.get_context("fork"),
                                   initializer=start_worker, initargs=(signals.this_process(),))
        try:
            futures = [pool.submit(execute, initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
            pending = futures  # waited for in short spells, so that a signal is acted on between them
            while pending and not any(future.done() and future.exception() for future in futures):
                pending = wait(pending, WAIT_SECONDS, return_when=FIRST_EXCEPTION).not_done
            returns = [future.result() for future in futures]  # a dead worker raises BrokenProcessPool here
        except BaseException:
            for worker in multiprocessing.active_children():  # none writes to its run after this
                worker.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return returns


def start_worker(launcher: str) -> None:
    """A new worker: its own connections to the store, and, until a job takes over the signals,
    an exit at SIGINT or SIGTERM or when the launching process (`launcher`) is gone."""
    store.after_fork()
    for signum in signals.SIGNALS:
        signal.signal(signum, lambda signum, frame: os._exit(128 + signum))
    os.environ[signals.LAUNCHER] = launcher
    signals.watch_launcher()


def execute(idx: int, overrides: list[str]) -> JobReturn:
    """One job in a worker, as Hydra's joblib launcher runs it, with the launcher's context as it
    was at the fork."""
    setup_globals()
    sweep_config = launching.hydra_context.config_loader.load_sweep_config(launching.config, overrides)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    return run_job(hydra_context=launching.hydra_context, config=sweep_config, task_function=launching.task_function,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
