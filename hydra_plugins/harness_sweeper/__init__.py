"""Hydra's sweeper plugin of the harness, `hydra/sweeper=harness` (conf/config.yaml's default).

It is Hydra's basic sweeper (the same jobs in the same order, from `hydra.sweeper.params` and
the command line, in batches of `max_batch_size`) with three differences:

- each job's config is composed once, here, and checked before any job starts; a launcher in
  this process (the sequential one, Ray's driver) takes the configs composed here instead of
  composing them again, a worker process composes its own;
- the multirun is recorded as one MLflow sweep (harness.sweep);
- with `refine_rounds`, once the jobs are done, rounds of jobs follow that extend the η grid of
  each batch size whose best η is at an end of it (analysis.summary's rules, as in the report).
"""

import sys
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from harness import signals, sweep
from harness.errors import ConfigError, describe, exit_with


@dataclass
class HarnessSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.harness_sweeper.HarnessSweeper"
    # after the planned jobs, at most this many rounds that extend the η grid of each batch size
    # whose best η is at an end of it, one grid step further, until the grid brackets it (0: none)
    refine_rounds: int = 0


ConfigStore.instance().store(group="hydra/sweeper", name="harness", node=HarnessSweeperConf, provider="harness")


class Composed:
    """Hydra's config loader, answering a launcher's `load_sweep_config` with the config the
    sweeper composed for those overrides; a copy sent to a worker process composes anew."""

    def __init__(self, loader):
        self.loader, self.configs = loader, {}

    def __getattr__(self, name: str):
        if name == "loader":  # not set yet: being unpickled
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __getstate__(self) -> dict:
        return {"loader": self.loader, "configs": {}}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def load_sweep_config(self, master_config: DictConfig, overrides: list[str]) -> DictConfig:
        config = self.configs.pop(tuple(overrides), None)
        return config if config is not None else self.loader.load_sweep_config(master_config, overrides)


def without_hydra(config: DictConfig) -> DictConfig:
    """What the job itself sees, as Hydra's `run_job` hands it over."""
    cfg = deepcopy(config)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


def expand(loader, params: dict | None, arguments: list[str]) -> list[list[str]]:
    """Every job's overrides, in the order of Hydra's basic sweeper: the study's
    `hydra.sweeper.params`, then the command line."""
    parser = OverridesParser.create(config_loader=loader)
    combined = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
    return [job for batch in BasicSweeper.split_arguments(parser.parse_overrides(combined), None) for job in batch]


class HarnessSweeper(BasicSweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict | None = None, refine_rounds: int = 0):
        super().__init__(max_batch_size=max_batch_size, params=params)
        if refine_rounds < 0:
            raise ConfigError(f"hydra.sweeper.refine_rounds: {refine_rounds} must be an integer >= 0 (0: none)")
        self.refine_rounds = refine_rounds

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.composed = Composed(hydra_context.config_loader)
        hydra_context.config_loader = self.composed  # the launcher set up above reads the same context

    def compose(self, overrides: list[str]) -> DictConfig:
        """The config Hydra composes for a job (with its `hydra` node); a value the schema
        refuses is a ConfigError."""
        try:
            return self.composed.loader.load_sweep_config(self.config, list(overrides))
        except (HydraException, OmegaConfBaseException) as error:
            raise ConfigError(sweep.composition_error(error)) from None

    def sweep(self, arguments: list[str]) -> list:
        sweep_dir = Path(self.config.hydra.sweep.dir)  # resolved first: every job's config copies its `now`
        self.record, self.jobs, self.configs, self.launched = sweep.Sweep(), [], [], 0
        try:
            with signals.deferred():
                self.add(expand(self.composed, self.params, arguments))
                sweep.current = self.record
        except ConfigError as error:
            exit_with(f"error: {error}", 2)
        except Exception as error:  # noqa: BLE001 - one line, not a traceback
            exit_with(f"error: the sweep could not start: {describe(error)}", 1)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's basic sweeper does
        returns = self.launch(self.jobs)
        for _ in range(self.refine_rounds):
            try:
                jobs = self.refinement()
            except Exception as error:  # noqa: BLE001 - the jobs so far stand; say why no more follow
                print(f"the η grid was not refined: {describe(error)}", file=sys.stderr)
                break
            if not jobs:
                break
            with signals.deferred():
                self.add(jobs)
            returns += self.launch(jobs)
        sweep.current = None
        with signals.deferred():
            self.record.end()
        return returns

    def add(self, jobs: list[list[str]]) -> None:
        """Compose and check these jobs (the first ones also open the sweep's record), and hand
        their configs and environment to the launcher."""
        configs = [self.compose(overrides) for overrides in jobs]
        views = [without_hydra(cfg) for cfg in configs]
        if self.jobs:
            environment = self.record.extend(jobs, views)
        else:
            environment = self.record.start(self.config, jobs, views)
        self.jobs += jobs
        self.configs += views
        self.hand_over(jobs, configs, environment)

    def launch(self, jobs: list[list[str]]) -> list:
        """The jobs, in batches of `max_batch_size`, numbered on from those launched before."""
        returns, size = [], self.max_batch_size or len(jobs)
        for start in range(0, len(jobs), size):
            returns.append(self.launcher.launch(jobs[start:start + size], initial_job_idx=self.launched))
            self.launched += len(returns[-1])
        return returns

    def refinement(self) -> list[list[str]]:
        """The jobs of the next round: for each batch size whose best η (as the report picks it)
        is at an end of its grid, the same jobs one grid step beyond it."""
        from analysis import loader, summary  # the report's own rules; imported only by a sweep that refines

        trained = [run.info.run_id for _, status, run in self.record.outcomes()
                   if status in ("finished", "diverged", "skipped")]
        if not trained:
            return []
        runs = loader.load_runs(self.configs[0].tracking.experiment, self.record.uri, run_ids=trained)
        best = summary.study(runs).best
        following, by_m = summary.beyond_edges(best), best.set_index("batch_size")
        jobs = []
        for batch_size, lr in following.items():
            for overrides, cfg in zip(self.jobs, self.configs):
                swept = [o for o in overrides if o.split("=", 1)[0] == "lr"]
                if cfg.batch_size == batch_size and cfg.lr == by_m.lr[batch_size] and swept:
                    jobs.append([o if o not in swept else f"lr={lr:.4g}" for o in overrides])
        if jobs:
            steps = "; ".join(f"m = {m}: the best η, {by_m.lr[m]:g}, is the {by_m.edge[m]} tried, so η = {lr:.4g} follows"
                              for m, lr in following.items())
            print(f"refining the η grid ({len(jobs)} more jobs): {steps}", flush=True)
        return jobs

    def hand_over(self, jobs: list[list[str]], configs: list[DictConfig], environment: dict[str, str]) -> None:
        """Every job's environment (Hydra's `hydra.job.env_set`, which every launcher applies) in
        the configs a launcher composes anew and in those composed here, which it takes instead."""
        env_set = [f"++hydra.job.env_set.{key}={value}" for key, value in environment.items()]
        with read_write(self.config.hydra), open_dict(self.config.hydra):
            kept = [o for o in self.config.hydra.overrides.hydra if not o.startswith("++hydra.job.env_set.")]
            self.config.hydra.overrides.hydra = kept + env_set
        for config in configs:
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.overrides.hydra.extend(env_set)
                config.hydra.job.env_set.update(environment)
        self.composed.configs.update({tuple(overrides): config for overrides, config in zip(jobs, configs)})
