"""Hydra's sweeper plugin of the harness, `hydra/sweeper=harness` (conf/config.yaml's default).

It is Hydra's basic sweeper (the same jobs in the same order, from `hydra.sweeper.params` and
the command line, in batches of `max_batch_size`) with three differences:

- Hydra composes each shape of job once (`Composed`): jobs that differ only in the values of
  plain keys take copies of one composition; every job is checked before any job starts;
- the multirun is recorded as one MLflow sweep (harness.sweep);
- with `refine_rounds`, once the jobs are done, rounds of jobs follow that extend the η grid of
  each batch size whose best η is at an end of it (analysis.summary's rules, as in the report);
  with `refine_interior` too, a best η inside its grid gets the geometric midpoints between it
  and its two neighbours (half the grid's log step), until a round leaves that best where it was.
"""

import gc
import math
import os
import sys
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.utils import configure_log
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from harness import console, signals, sweep
from harness.errors import ConfigError, describe, exit_with


@dataclass
class HarnessSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.harness_sweeper.HarnessSweeper"
    # after the planned jobs, at most this many rounds that extend the η grid of each batch size
    # whose best η is at an end of it, one grid step further, until the grid brackets it (0: none)
    refine_rounds: int = 0
    # in those rounds, also try the geometric midpoints between a best η inside its grid and its
    # neighbours, until a round leaves that batch size's best η where it was
    refine_interior: bool = False


ConfigStore.instance().store(group="hydra/sweeper", name="harness", node=HarnessSweeperConf, provider="harness")


class Composed:
    """Hydra's config loader, composing each shape of a job once. Jobs whose overrides differ only
    in the values they give to plain keys (`lr=3`, `seed=1`: not a config group, a `hydra.` key,
    a `+`, `++`, `~` or `@` override, a dict that Hydra would merge, or a key another override of
    the job also sets) share one composition by Hydra; each takes a copy of it with its own
    values assigned by Hydra's own override rules, and its own `hydra.overrides.task` and
    `hydra.job.override_dirname`, as Hydra sets them. A copy of this loader sent to a worker
    process carries the compositions with it."""

    def __init__(self, loader):
        self.loader, self.master, self.shapes, self.groups = loader, None, {}, {}

    def __getattr__(self, name: str):
        if name == "loader":  # not set yet: being unpickled
            raise AttributeError(name)
        return getattr(self.loader, name)

    def load_sweep_config(self, master_config: DictConfig, overrides: list[str]) -> DictConfig:
        """The job's config with its `hydra` node, as Hydra's loader composes it."""
        return self.compose(master_config, overrides, with_hydra=True)

    def job_config(self, master_config: DictConfig, overrides: list[str]) -> DictConfig:
        """The job's config without its `hydra` node, as Hydra's `run_job` hands it to the job."""
        return self.compose(master_config, overrides, with_hydra=False)

    def prepare(self, master_config: DictConfig, jobs: list[list[str]]) -> None:
        """Compose each shape of these jobs now, so that a copy of this loader sent to a worker
        process has them all."""
        for overrides in jobs:
            self.shape(master_config, overrides)

    def shape(self, master_config: DictConfig, overrides: list[str]) -> tuple[tuple, list, list]:
        """The job's shape (composed if new), its parsed overrides and the plain ones among them."""
        hydra_overrides = list(master_config.hydra.overrides.hydra)
        master = (master_config.hydra.job.config_name, *hydra_overrides)
        if master != self.master:  # compositions of another master config (more env_set) are stale
            self.master, self.shapes = master, {}
        parsed = OverridesParser.create().parse_overrides(hydra_overrides + list(overrides))
        plain = self.plain(parsed)
        shape = tuple(("=", o.key_or_group) if o in plain else o.input_line for o in parsed)
        if shape not in self.shapes:
            config = self.loader.load_sweep_config(master_config, list(overrides))
            self.shapes[shape] = {True: config, False: without_hydra(config)}
        return shape, parsed, plain

    def compose(self, master_config: DictConfig, overrides: list[str], with_hydra: bool) -> DictConfig:
        shape, parsed, plain = self.shape(master_config, overrides)
        config = deepcopy(self.shapes[shape][with_hydra])  # a launcher writes into the config it gets
        ConfigLoaderImpl._apply_overrides_to_config(plain, config)
        if with_hydra:
            task = [o for o in parsed if not o.is_hydra_override()]
            override_dirname = config.hydra.job.config.override_dirname
            with open_dict(config.hydra):
                config.hydra.overrides.task = [o.input_line for o in task]
                config.hydra.job.override_dirname = get_overrides_dirname(
                    overrides=task, kv_sep=override_dirname.kv_sep, item_sep=override_dirname.item_sep,
                    exclude_keys=override_dirname.exclude_keys)
                for key in config.hydra.job.env_copy:
                    config.hydra.job.env_set[key] = os.environ[key]
                config.hydra.runtime.cwd = os.getcwd()
        OmegaConf.copy_cache(from_config=master_config, to_config=config)
        return config

    def plain(self, parsed: list) -> list:
        """The overrides that only assign a value to a key of the composed config."""
        candidates = [o for o in parsed if not o.is_hydra_override() and o.type == OverrideType.CHANGE
                      and o.package is None and not o.is_sweep_override() and not isinstance(o.value(), dict)
                      and not self.is_group(o.key_or_group)]
        related = lambda a, b: a == b or a.startswith(f"{b}.") or b.startswith(f"{a}.")
        return [o for o in candidates
                if not any(related(o.key_or_group, other.key_or_group) for other in parsed if other not in candidates)]

    def is_group(self, key: str) -> bool:
        if key not in self.groups:
            parent, _, name = key.rpartition("/")
            self.groups[key] = name in self.loader.list_groups(parent)
        return self.groups[key]


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


class Refinement:
    """The η each round of refinement adds, from each batch size's best η as the report chooses it
    (analysis.summary.best_lr, given as `best`): one grid step beyond a best at an end of its grid
    (analysis.summary.beyond_edges, the report's rule); with `interior`, for a best inside its grid,
    the geometric midpoints √(η_best · η_neighbour) with both its neighbours, halving the log step
    there, until a round leaves that batch size's best η where it was. New η are rounded to 4
    significant digits, the precision of a job's `lr=` override."""

    def __init__(self, interior: bool = False):
        self.interior = interior
        self.halved: dict = {}  # batch size: its best η when its grid was last refined around it

    def next(self, best) -> dict:
        """{batch size: (the new η, why)} for the next round; empty when none is due."""
        from analysis import summary  # the report's own rules; imported only by a sweep that refines

        by_m = best.set_index("batch_size")
        following = {m: ([lr], f"the best η, {by_m.lr[m]:g}, is the {by_m.edge[m]} tried")
                     for m, lr in summary.beyond_edges(best).items()}
        for row in best[(best.edge == "") & best.lr.notna()].itertuples() if self.interior else ():
            if self.halved.get(row.batch_size) == row.lr:  # its last round found no better η
                continue
            self.halved[row.batch_size] = row.lr
            i = row.grid.index(row.lr)
            below, above = row.grid[i - 1], row.grid[i + 1]
            following[row.batch_size] = ([math.sqrt(below * row.lr), math.sqrt(row.lr * above)],
                                         f"the best η, {row.lr:g}, lies between {below:g} and {above:g}")
        rounded = {m: ([new for new in (float(f"{lr:.4g}") for lr in lrs) if new not in by_m.grid[m]], why)
                   for m, (lrs, why) in following.items()}
        return {m: (lrs, why) for m, (lrs, why) in rounded.items() if lrs}


class HarnessSweeper(BasicSweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict | None = None, refine_rounds: int = 0,
                 refine_interior: bool = False):
        super().__init__(max_batch_size=max_batch_size, params=params)
        if refine_rounds < 0:
            raise ConfigError(f"hydra.sweeper.refine_rounds: {refine_rounds} must be an integer >= 0 (0: none)")
        if refine_interior and not refine_rounds:
            raise ConfigError("hydra.sweeper.refine_interior: true needs hydra.sweeper.refine_rounds >= 1, "
                              "the rounds it refines in (or refine_interior=false)")
        self.refine_rounds, self.refinement_rule = refine_rounds, Refinement(refine_interior)

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.composed = Composed(hydra_context.config_loader)
        hydra_context.config_loader = self.composed  # the launcher set up above reads the same context

    def compose(self, overrides: list[str]) -> DictConfig:
        """The job's config (without its `hydra` node, as the job gets it); a value the schema
        refuses is a ConfigError."""
        try:
            return self.composed.job_config(self.config, list(overrides))
        except (HydraException, OmegaConfBaseException) as error:
            raise ConfigError(sweep.composition_error(error)) from None

    def sweep(self, arguments: list[str]) -> list:
        sweep_dir = Path(self.config.hydra.sweep.dir)  # resolved first: every job's config copies its `now`
        self.record, self.jobs, self.configs, self.launched = sweep.Sweep(), [], [], 0
        try:
            with signals.deferred():
                jobs = expand(self.composed, self.params, arguments)
                if not self.config.dry_run:  # a dry run writes no folder, no log file
                    self.record.announce(self.config, len(jobs))
                    console.quiet(self.config.verbose)  # warnings to the log file, now that its folder is made
                self.add(jobs)
                sweep.current = self.record
        except ConfigError as error:
            exit_with(f"error: {error}", 2)
        except Exception as error:  # noqa: BLE001 - one line, not a traceback
            if isinstance(error, OSError) and error.filename:  # the sweep's folder: `cli` names it and the fix
                raise
            exit_with(f"error: the sweep could not start: {describe(error)}", 1)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's basic sweeper does
        gc.freeze()  # the sweep's own objects last until its end: the collector's passes skip them
        returns = self.launch(self.todo)
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
            returns += self.launch(self.todo)
        sweep.current = None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)  # the launcher may leave the last job's logging in place
        with signals.deferred():
            self.record.end()
        return returns

    def add(self, jobs: list[list[str]]) -> None:
        """Compose and check these jobs (the first ones also open the sweep's record), keep those
        still to train as `todo`, and hand their environment to the launcher."""
        configs = [self.compose(overrides) for overrides in jobs]
        if self.jobs:
            environment = self.record.extend(jobs, configs)
        else:
            environment = self.record.start(self.config, jobs, configs)
        self.jobs += jobs
        self.configs += configs
        self.todo = self.record.to_launch(jobs, configs)
        self.hand_over(environment)
        self.composed.prepare(self.config, self.todo)

    def launch(self, jobs: list[list[str]]) -> list:
        """The jobs, in batches of `max_batch_size`, numbered on from those launched before."""
        returns, size = [], self.max_batch_size or max(len(jobs), 1)
        for start in range(0, len(jobs), size):
            returns.append(self.launcher.launch(jobs[start:start + size], initial_job_idx=self.launched))
            self.launched += len(returns[-1])
        return returns

    def refinement(self) -> list[list[str]]:
        """The jobs of the next round: for each batch size whose best η (as the report picks it)
        is at an end of its grid, the same jobs one grid step beyond it; with `refine_interior`,
        for each whose best is inside its grid, the same jobs at the midpoints around it."""
        from analysis import loader, summary  # the report's own rules; imported only by a sweep that refines

        trained = [run.info.run_id for _, status, run in self.record.outcomes()
                   if status in ("finished", "diverged", "skipped")]
        if not trained:
            return []
        runs = loader.load_runs(self.configs[0].tracking.experiment, self.record.uri, run_ids=trained)
        best = summary.study(runs).best
        following, by_m, jobs = self.refinement_rule.next(best), best.set_index("batch_size"), []
        for batch_size, (lrs, _) in following.items():
            for overrides, cfg in zip(self.jobs, self.configs):
                swept = [o for o in overrides if o.split("=", 1)[0] == "lr"]
                if cfg.batch_size == batch_size and cfg.lr == by_m.lr[batch_size] and swept:
                    jobs += [[o if o not in swept else f"lr={lr:g}" for o in overrides] for lr in lrs]
        if jobs:
            steps = "; ".join(f"m = {m}: {why}, so η = {', '.join(f'{lr:g}' for lr in lrs)} {'follow' if len(lrs) > 1 else 'follows'}"
                              for m, (lrs, why) in following.items())
            print(f"refining the η grid ({len(jobs)} more jobs): {steps}", flush=True)
        return jobs

    def hand_over(self, environment: dict[str, str]) -> None:
        """Every job's environment, as Hydra's `hydra.job.env_set` (which every launcher applies) in
        the config from which a launcher composes the jobs."""
        env_set = [f"++hydra.job.env_set.{key}={value}" for key, value in environment.items()]
        with read_write(self.config.hydra), open_dict(self.config.hydra):
            kept = [o for o in self.config.hydra.overrides.hydra if not o.startswith("++hydra.job.env_set.")]
            self.config.hydra.overrides.hydra = kept + env_set
