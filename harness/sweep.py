"""A Hydra multirun as one MLflow sweep: a parent run (tag role=sweep) with one child run per job.

`SweepCallback` runs in the launching process. Before any job starts it expands the sweep and checks
every job's config (a bad setting stops the sweep before anything is tracked), creates the store and
the experiment once (parallel workers then only open them), marks KILLED the runs that earlier
processes left RUNNING, and opens the parent run. Jobs, in this process or in workers, find the
parent by the sweep's id. At the end it prints one row per job and exits non-zero if any job failed.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from . import data as datasets
from . import tracking
from .config import ConfigError, check, check_batch_size

# overrides that choose how or where jobs run, not what they compute: left out of run names
NOT_IN_NAME = ("experiment", "launcher", "tracking", "blas_threads", "data.root", "data.download")
OUTCOMES = ("finished", "diverged", "failed", "killed", "skipped", "missing")


def sweep_id(hydra_cfg: DictConfig) -> str:
    """The sweep's output folder, absolute: the same in the launcher and in every job."""
    return str(Path(hydra_cfg.runtime.cwd, hydra_cfg.sweep.dir))


def run_name(overrides: list[str]) -> str:
    """`lr=3,batch_size=10,seed=0`: the overrides that say what this job computes."""
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    keep = [o for o, key in zip(overrides, keys) if key not in NOT_IN_NAME and key.split(".")[0] not in NOT_IN_NAME]
    return ",".join(keep)


@tracking.signals_held()
def parent_run(experiment: str, sweep: str):
    runs = MlflowClient().search_runs([experiment], f"tags.role = 'sweep' and tags.sweep_id = '{sweep}'", max_results=1)
    return runs[0].info.run_id if runs else None


def job_overrides(config: DictConfig) -> list[list[str]]:
    """Every job's overrides, expanded as Hydra's basic sweeper does (sweeper params, then the command line)."""
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    arguments = [f"{key}={value}" for key, value in params.items()] + list(config.hydra.overrides.task)
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    return [job for batch in BasicSweeper.split_arguments(parser.parse_overrides(arguments), None) for job in batch]


def job_config(config: DictConfig, overrides: list[str]) -> DictConfig:
    """The config a job with these overrides will see."""
    cfg = GlobalHydra.instance().config_loader().load_sweep_config(config, list(overrides))
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


def check_jobs(configs: list[DictConfig]) -> None:
    """Raise ConfigError for the first job that cannot run; load each distinct dataset once."""
    sizes = {}
    for cfg in configs:
        check(cfg)
        data = OmegaConf.to_container(cfg.data, resolve=True)
        key = json.dumps(data, sort_keys=True)
        if key not in sizes:
            sizes[key] = len(datasets.load(data).train)
        check_batch_size(cfg.batch_size, sizes[key])


def outcome(run) -> str:
    """finished or diverged (MLflow status FINISHED), failed, killed, or running."""
    if run.info.status == "FINISHED":
        return run.data.tags.get("status", "finished")
    return run.info.status.lower()


def ui_command(uri: str) -> str:
    """How to browse this store, from any directory."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    return f"mlflow ui --backend-store-uri {uri}"


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def stop_on_error(step, *args) -> None:
    """Run a step of the sweep; stop the process on an error (Hydra would only warn and go on)."""
    try:
        step(*args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except Exception:
        traceback.print_exc()
        sys.exit(1)


class SweepCallback(Callback):
    """Groups a multirun into one MLflow parent run and prints its summary."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        with tracking.signals_held():
            stop_on_error(self.start, config)
        tracking.check_signals()

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        tracking.check_signals()
        with tracking.signals_held():
            stop_on_error(self.end)

    def start(self, config: DictConfig) -> None:
        jobs = job_overrides(config)
        configs = [job_config(config, overrides) for overrides in jobs]
        check_jobs(configs)
        self.hashes = [(run_name(overrides), tracking.config_hash(cfg)) for overrides, cfg in zip(jobs, configs)]
        self.uri, name = configs[0].tracking.uri, configs[0].tracking.experiment
        tracking.connect(self.uri)
        tracking.stop_on_signals()
        self.experiment = tracking.experiment_id(name)
        closed = tracking.close_abandoned(self.experiment)
        if closed:
            print(f"marked KILLED {len(closed)} run(s) left RUNNING by processes that are gone: {', '.join(closed)}")
        tags = {"role": "sweep", "sweep_id": sweep_id(config.hydra), "overrides": " ".join(config.hydra.overrides.task),
                **tracking.process_tags(), **tracking.git_tags()}
        if configs[0].study.question:
            tags["mlflow.note.content"] = configs[0].study.question  # the sweep's description in the MLflow UI
        self.parent = MlflowClient().create_run(self.experiment, run_name=f"sweep {Path(sweep_id(config.hydra)).name}",
                                                tags=tags).info.run_id
        tracking.open_runs.add(self.parent)

    def end(self) -> None:
        client = MlflowClient()
        children = client.search_runs([self.experiment], f"tags.mlflow.parentRunId = '{self.parent}'", max_results=10_000)
        by_hash = {run.data.tags.get("config_hash"): run for run in reversed(children)}  # latest first wins
        rows, counts = [("run", "train_cost", "test_accuracy", "status")], dict.fromkeys(OUTCOMES, 0)
        for name, digest in self.hashes:
            run = by_hash.get(digest)
            if run is not None:
                status = outcome(run)
            else:  # resumed: finished by an earlier sweep
                run = tracking.finished_run(self.experiment, digest)
                status = "skipped" if run else "missing"
            counts[status] = counts.get(status, 0) + 1
            metrics = run.data.metrics if run else {}
            fmt = lambda key: f"{metrics[key]:.4g}" if key in metrics else "-"
            rows.append((name or "(defaults)", fmt("train_cost"), fmt("test_accuracy"), status))
        summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n or status != "missing")
        print(f"\n{table(rows)}\n\n{len(self.hashes)} jobs: {summary}\n{ui_command(self.uri)}")
        for status, n in counts.items():
            client.set_tag(self.parent, f"jobs_{status}", str(n))
        client.set_terminated(self.parent, "FINISHED")
        tracking.open_runs.discard(self.parent)
        bad = len(self.hashes) - counts["finished"] - counts["diverged"] - counts["skipped"]
        if bad:
            print(f"error: {bad} of {len(self.hashes)} jobs did not finish", file=sys.stderr)
            sys.exit(1)
