"""A multirun as one MLflow sweep: a parent run (tag role=sweep) with one child run per job.

`Sweep` runs in the launching process (Hydra's sweeper plugin, hydra_plugins/harness_sweeper,
drives it). Before any job starts it checks every job's config (a bad setting stops the sweep
before anything is tracked), opens the store once (workers then only open it), marks KILLED the
runs left RUNNING by processes that are gone, and opens the parent run. The parent's id is the
sweep's id: each job gets it, with the identity of the launching process, in its environment. At
the end it marks FAILED the runs still RUNNING (their process died), prints one row per job and
exits non-zero if any job did not finish. If the launch fails or is stopped instead, `abort` ends
every run of the sweep still RUNNING.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from . import duration, names, server, signals, store, tracking
from .config import check, check_batch_size, config_hash
from .errors import ConfigError, describe, exit_with
from .job import JOBS, SWEEP, epochs_of, load_data, log, run_name

if TYPE_CHECKING:  # MLflow is imported where the sweep writes: a dry run does without it
    from mlflow.entities import Run

OUTCOMES = ("finished", "diverged", "failed", "killed", "skipped", "missing")
current: "Sweep | None" = None  # the sweep this process launches, for `abort`
# why a run is still RUNNING once every job has returned: say, a Ray worker lost with its node,
# whose task Ray ran again elsewhere
LEFT_RUNNING = "still RUNNING when every job had returned: its process died, or the store refused its end"


def composition_error(error: BaseException) -> str:
    """One line for Hydra's or OmegaConf's refusal of a value: the key, then why (or the harness's
    own check, raised where Hydra instantiates the sweeper)."""
    cause = error.__cause__ if isinstance(error.__cause__, (OmegaConfBaseException, ConfigError)) else error
    key = getattr(cause, "full_key", None)
    message = (getattr(cause, "msg", None) or str(cause)).strip().splitlines()[0]
    return f"{key}: {message}" if key else message


def check_jobs(configs: list[DictConfig]) -> list[tuple[int, float]]:
    """Raise ConfigError for the first job that cannot run; load each distinct dataset once (the
    last one stays loaded for the jobs of a launcher in this process). Return each job's epochs
    and expected seconds of training."""
    samples, found = {}, []
    for cfg in configs:
        check(cfg)
        key = json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True)
        if key not in samples:
            samples[key] = duration.sample(load_data(key, cfg.model.dtype))
        check_batch_size(cfg.batch_size, samples[key].n_train)
        found.append((epochs_of(cfg, samples[key].n_train), duration.check(cfg, samples[key])))
    return found


def outcome(run) -> str:
    """finished or diverged (MLflow status FINISHED), failed, killed, or running."""
    if run.info.status == "FINISHED":
        return run.data.tags.get(names.STATUS, names.FINISHED)
    return run.info.status.lower()


def disagreements(launcher: dict[str, str], runs: list[Run]) -> list[str]:
    """Warnings for runs that ran other code than the launching checkout (tags git_commit and
    git_dirty, `launcher` being the launching process's), or saw other data than the other runs of
    the same data settings (the dataset input's digest): on a cluster, a node with another
    checkout, or other files at the data's path."""
    code = lambda run: (run.data.tags.get(names.GIT_COMMIT), run.data.tags.get(names.GIT_DIRTY))
    where = lambda found: ", ".join(sorted({f"{run.info.run_name} on {run.data.tags.get(names.HOST)}" for run in found}))
    lines = []
    other = [run for run in runs if code(run) != (launcher.get(names.GIT_COMMIT), launcher.get(names.GIT_DIRTY))]
    if other:
        lines.append(f"warning: {len(other)} run(s) ran other code than the launching checkout "
                     f"(commit {launcher.get(names.GIT_COMMIT)}, uncommitted changes: {launcher.get(names.GIT_DIRTY)}): "
                     f"{where(other)}")
    by_data: dict[tuple, dict[str, list[Run]]] = {}
    for run in (run for run in runs if run.inputs.dataset_inputs):  # a job that failed first may have none
        settings = tuple(sorted((key, value) for key, value in run.data.params.items()
                                if key.startswith("data.") and key not in names.EXECUTION_KEYS))
        by_data.setdefault(settings, {}).setdefault(run.inputs.dataset_inputs[0].dataset.digest, []).append(run)
    for digests in by_data.values():
        if len(digests) > 1:
            seen = "; ".join(f"digest {digest} by {where(found)}" for digest, found in digests.items())
            lines.append(f"warning: runs of the same data settings saw different data: {seen}")
    return lines


def absolute(uri: str) -> str:
    """The store's URI as it reads from any directory: a relative SQLite path made absolute."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{store.sqlite_path(uri).resolve()}"
    return uri


def ui_command(uri: str, experiment: str | None = None) -> str:
    """How to browse this store, from any directory, and the address of the experiment's runs: the
    MLflow UI opens an experiment on its GenAI pages unless its workflow switch (the address's
    `workflowType`, else what the browser last chose) says machine learning."""
    page = f"/#/experiments/{experiment}?workflowType=machine_learning" if experiment else ""
    if uri.startswith(("http://", "https://")):
        return f"open {uri.rstrip('/')}{page} in a browser"
    return f"mlflow ui --backend-store-uri {shlex.quote(absolute(uri))}" + (f"  # then open http://127.0.0.1:5000{page}" if page else "")


def best_on_validation(runs: list[tuple[str, Run]]) -> tuple[str, str, Run] | None:
    """(the metric it was chosen by, the name and the run) of the named runs with the highest final
    validation accuracy, or the lowest validation cost where none has an accuracy; None without
    either. Never chosen on the test set, so that its test figures stay an unbiased estimate."""
    for metric, better in ((names.VALIDATION_ACCURACY, max), (names.VALIDATION_COST, min)):
        scored = [(name, run) for name, run in runs if metric in run.data.metrics]
        if scored:
            name, run = better(scored, key=lambda named: named[1].data.metrics[metric])
            return metric, name, run
    return None


def launcher_line(config: DictConfig) -> str:
    """`launcher parallel (2 worker processes)`: the launcher of a sweep's master config."""
    choice = config.hydra.runtime.choices.get("launcher", "sequential")
    if choice == "parallel":
        workers = config.hydra.launcher.n_jobs
        return f"launcher parallel ({os.cpu_count() if workers == -1 else workers} worker processes)"
    if choice == "ray":
        address = config.hydra.launcher.ray.init.get("address")
        return f"launcher ray ({f'the cluster at {address}' if address else 'a local Ray instance'})"
    return f"launcher {choice} (one job after another in this process)"


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


class Sweep:
    """The record of one multirun: its jobs checked, its parent run, its summary."""

    def announce(self, config: DictConfig, jobs: int) -> None:
        """The sweep's first line, before its jobs are checked: how many, on which launcher,
        tracked where (also in the sweep folder's multirun.log, which needs the folder)."""
        self.began = time.monotonic()
        rounds = config.hydra.sweeper.get("refine_rounds", 0)
        more = f" (up to {rounds} rounds more where a best η is at its grid's edge)" if rounds else ""
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
        log.info(f"{jobs} jobs{more}, {launcher_line(config)}, tracked in {absolute(config.tracking.uri)} "
                 f"(experiment {config.tracking.experiment})")

    def start(self, config: DictConfig, jobs: list[list[str]], configs: list[DictConfig]) -> dict[str, str]:
        """Check every job (`configs`: what each will see), open the store and the parent run;
        return the environment every job must get."""
        self.jobs, self.done, self.launched, self.expected = [], {}, 0, 0.0  # done: config hash → its complete FINISHED run
        self.add(jobs, configs)
        self.uri, self.patience = configs[0].tracking.uri, configs[0].tracking.patience
        self.experiment_name = configs[0].tracking.experiment
        server.refuse_local_store(config.hydra.launcher._target_, self.uri)
        if configs[0].dry_run:
            print(self.dry_run(configs))
            sys.exit(0)
        self.client = store.connect(self.uri)
        self.experiment = store.experiment_id(self.client, configs[0].tracking.experiment)
        closed = store.close_abandoned(self.client, self.experiment)
        if closed:
            print(f"marked KILLED {len(closed)} run(s) left RUNNING by processes that are gone: {', '.join(closed)}")
        tags = {names.ROLE: names.SWEEP, names.OVERRIDES: " ".join(config.hydra.overrides.task),
                **tracking.process_tags(), **tracking.git_tags()}
        if configs[0].study.question:  # the description of the sweep and of its experiment in the MLflow UI
            tags[names.DESCRIPTION] = configs[0].study.question
            self.client.set_experiment_tag(self.experiment, names.DESCRIPTION, configs[0].study.question)
        self.parent = self.client.create_run(self.experiment, run_name=f"sweep {Path(config.hydra.sweep.dir).name}",
                                             tags=tags).info.run_id
        environment = {SWEEP: self.parent, signals.LAUNCHER: signals.this_process(), JOBS: str(len(self.jobs))}
        if "MLFLOW_TRACKING_URI" in os.environ:  # a Ray worker on another node has an environment of its own
            environment["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_TRACKING_URI"]
        self.environment = environment
        return environment

    def to_launch(self, jobs: list[list[str]], configs: list[DictConfig]) -> list[list[str]]:
        """The jobs just added less those whose config already has a complete FINISHED run (with
        tracking.resume), found with one search for them all; every job's environment counts the
        jobs launched."""
        if configs[0].tracking.resume:
            wanted = {digest: epochs for _, digest, epochs in self.jobs[-len(jobs):]}
            self.done.update(store.finished_runs(self.client, self.experiment, wanted))
        todo = [overrides for overrides, (_, digest, _) in zip(jobs, self.jobs[-len(jobs):]) if digest not in self.done]
        if len(todo) < len(jobs):
            print(f"skipping {len(jobs) - len(todo)} of {len(jobs)} jobs: their configs already have a complete "
                  f"FINISHED run (tracking.resume=true)", flush=True)
        self.launched += len(todo)
        self.environment[JOBS] = str(self.launched)
        return todo

    def extend(self, jobs: list[list[str]], configs: list[DictConfig]) -> dict[str, str]:
        """Check more jobs for this sweep (a later round); return the environment they must get."""
        self.add(jobs, configs)
        return self.environment

    def add(self, jobs: list[list[str]], configs: list[DictConfig]) -> None:
        """Check these jobs and count them in the sweep: name, config hash, epochs."""
        checked = check_jobs(configs)
        self.expected += sum(seconds for _, seconds in checked)
        self.jobs += [(run_name(overrides), config_hash(cfg), epochs)
                      for overrides, cfg, (epochs, _) in zip(jobs, configs, checked)]

    def dry_run(self, configs: list[DictConfig]) -> str:
        """A row per job: its name, config hash and what a launch would do with it."""
        done = store.done_already(self.uri, configs[0].tracking.experiment, [digest for _, digest, _ in self.jobs],
                                  [epochs for _, _, epochs in self.jobs])
        resume = configs[0].tracking.resume
        rows = [("job", "config hash", "a launch would")] + [
            (name or "(defaults)", digest[:12], f"skip it: FINISHED run {run_id}" if run_id and resume else "train it")
            for (name, digest, _), run_id in zip(self.jobs, done)]
        return (f"{table(rows)}\n\n{len(self.jobs)} jobs, training expected to take {duration.text(self.expected)} "
                f"one after another; dry run: nothing was trained or tracked")

    def end(self) -> None:
        from mlflow.entities import Metric, RunTag

        tracking.close_unclosed(self.client)
        try:
            store.patiently(self.patience, self.end_running, "FAILED", LEFT_RUNNING)
            counts, text, best, best_run = store.patiently(self.patience, self.summarize)
        except Exception as error:  # noqa: BLE001 - the store cannot be read: say so in one line
            exit_with(f"error: the sweep's runs cannot be read back from {self.uri} ({describe(error)}); "
                      f"the next launch marks what was left RUNNING", 1)
        log.info(text)
        try:  # the results on the parent run, so that sweeps can be sorted in the MLflow UI
            metrics = {f"jobs_{status}": n for status, n in counts.items()} | best
            self.client.log_batch(self.parent, metrics=[Metric(key, value, 0, 0) for key, value in metrics.items()],
                                  tags=[RunTag(names.BEST_RUN, best_run)] if best_run else [], synchronous=True)
            self.client.log_text(self.parent, text, "summary.txt")
            store.end(self.client, self.parent, "FINISHED")
        except Exception as error:  # noqa: BLE001 - the next launch marks the parent, its process gone
            print(f"the store refused the end of the sweep ({describe(error)}); the next launch marks it",
                  file=sys.stderr)
        log.info(self.closing())
        bad = len(self.jobs) - counts["finished"] - counts["diverged"] - counts["skipped"]
        if bad:
            exit_with(f"error: {bad} of {len(self.jobs)} jobs did not finish", 1)

    def closing(self) -> str:
        """The sweep's last lines: its time and id, how to browse its runs and write its report."""
        report = ["harness", "report", "--experiment", self.experiment_name, "--sweep", self.parent]
        if absolute(self.uri) != absolute("sqlite:///mlflow.db"):  # not the report's default store
            report += ["--tracking-uri", absolute(self.uri)]
        return "\n".join([f"sweep {self.parent} took {time.monotonic() - self.began:.0f} s",
                          f"browse: {ui_command(self.uri, self.experiment)}", f"report: {shlex.join(report)}"])

    def outcomes(self) -> list[tuple[str, str, Run | None]]:
        """Each job's name, outcome and run: its own, or for a skipped job the earlier FINISHED run."""
        children = store.search(self.experiment, f"tags.`{names.PARENT_RUN_ID}` = '{self.parent}'")
        by_hash = {run.data.tags.get(names.CONFIG_HASH): run for run in reversed(children)}  # latest first wins
        found = []
        for name, digest, epochs in self.jobs:
            run = by_hash.get(digest)
            if run is not None:
                found.append((name, outcome(run), run))
            else:  # resumed: finished by an earlier sweep
                run = self.done.get(digest) or store.finished_run(self.client, self.experiment, digest, epochs)
                found.append((name, "skipped" if run else "missing", run))
        return found

    def summarize(self) -> tuple[dict[str, int], str, dict[str, float], str | None]:
        """The counts of each outcome, a table with a row per job, the lowest final training cost
        with the final metrics of the best run on validation, and that run's id."""
        rows, counts = [("run", names.TRAIN_COST, names.TEST_ACCURACY, "status")], dict.fromkeys(OUTCOMES, 0)
        trained, found = [], self.outcomes()
        for name, status, run in found:
            counts[status] = counts.get(status, 0) + 1
            metrics = run.data.metrics if run else {}
            if status in ("finished", "skipped"):
                trained.append((name or "(defaults)", run))
            fmt = lambda key: f"{metrics[key]:.4g}" if key in metrics else "-"
            rows.append((name or "(defaults)", fmt(names.TRAIN_COST), fmt(names.TEST_ACCURACY), status))
        summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n or status != "missing")
        best = {f"best_{names.TRAIN_COST}": min((run.data.metrics[names.TRAIN_COST] for _, run in trained
                                                 if names.TRAIN_COST in run.data.metrics), default=None)}
        chosen, lines = best_on_validation(trained), []
        if chosen:
            metric, name, run = chosen
            final = run.data.metrics
            best[f"best_{metric}"] = final[metric]
            best |= {names.at_best_validation(key): final[key] for key in (names.TEST_ACCURACY, names.TEST_COST) if key in final}
            lines.append(f"best on {metric}: {name} (" + ", ".join(
                f"{key} {final[key]:.4g}" for key in (metric, names.TEST_ACCURACY, names.TEST_COST) if key in final) + ")")
        ran_here = [run for _, status, run in found if run is not None and status not in ("skipped", "missing")]
        warnings = disagreements(tracking.git_tags(), ran_here)  # what the parent run was tagged with
        text = "\n".join([f"\n{table(rows)}\n", f"{len(self.jobs)} jobs: {summary}", *lines, *warnings])
        return (counts, text, {key: value for key, value in best.items() if value is not None},
                chosen[2].info.run_id if chosen else None)

    def abort(self, status: str, reason: str) -> None:
        """End KILLED or FAILED every run of the sweep still RUNNING, and the sweep itself; what
        the store refuses now, the next launch marks."""
        try:
            self.end_running(status, reason)
            store.end(self.client, self.parent, status, reason)
        except Exception as error:  # noqa: BLE001
            print(f"the store refused to mark the sweep's runs ({describe(error)}); the next launch marks them",
                  file=sys.stderr)

    def end_running(self, status: str, reason: str) -> None:
        """End `status` every job's run of the sweep still RUNNING."""
        where = f"attributes.status = 'RUNNING' and tags.`{names.PARENT_RUN_ID}` = '{self.parent}'"
        for run in store.search(self.experiment, where):
            store.end(self.client, run.info.run_id, status, reason)
