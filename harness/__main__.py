"""`harness` (or `python -m harness`): one job, or a sweep with `-m`, composed by Hydra from `conf/`
and the folders `--config-dir` adds; `harness report …` and the figure commands are `python -m
analysis`'s, found by their entry points (group `harness.commands`).

Every error reaches `cli` (Hydra's own printer is bypassed with HYDRA_FULL_ERROR), which says it
in one line: a setting that cannot run exits 2 before anything is tracked; SIGINT or SIGTERM
ends the runs of this launch KILLED and exits 128 + the signal; any other failure of the launch
ends them FAILED and exits 1.
"""

import gc
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from . import console, duration, signals, sweep
from .config import CONF, check, config_hash
from .errors import ConfigError, describe, exit_with
from .job import Context, build, metrics_line, run, run_name, store_error


@hydra.main(config_path=str(CONF), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> dict:
    console.quiet(cfg.verbose)
    context = Context.from_hydra(cfg)
    if cfg.dry_run:  # a sweep's dry run ends in its sweeper, before any job
        check(cfg)
        expected = duration.check(cfg, duration.sample(build(cfg)[0]))
        return print(f"dry run: one job, {run_name(context.overrides) or 'the defaults'}; "
                     f"config hash {config_hash(cfg)[:12]}; training expected to take {duration.text(expected)}; "
                     f"nothing was trained or tracked")
    experiment = next((o.split("=", 1)[1] for o in context.overrides if o.startswith("+experiment=")), None)
    if experiment is not None and context.sweep is None:
        print(f"note: {experiment} is a study's sweep; only one job of it runs here. "
              f"Run the study with: python -m harness -m +experiment={experiment}", file=sys.stderr)
    try:
        outcome = run(cfg, context)
    except ConfigError as error:  # here, not in `cli`: Hydra would first print the job's overrides
        exit_with(f"error: {error}", 2)
    except Exception as error:
        if not store_error(error):
            raise
        exit_with(f"error: the store failed: {describe(error)}; the run is not FINISHED", 1)
    final = outcome.result.final if outcome.result else {}
    if context.sweep is None:  # a sweep prints one table for all its jobs at the end
        print(f"{outcome.status}: {outcome.name} after {len(outcome.result.history) - 1} epochs: "
              f"{metrics_line(final)}\n{sweep.ui_command(cfg.tracking.uri)}")
    return {"status": outcome.status, **final}


def config_dirs(arguments: list[str]) -> list[Path]:
    """The folders whose configs Hydra composes: those of `--config-dir DIR` (or `-cd DIR`,
    `--config-dir=DIR`), which come first, then conf/."""
    found = [value for flag, value in zip(arguments, arguments[1:]) if flag in ("--config-dir", "-cd")]
    found += [argument.split("=", 1)[1] for argument in arguments if argument.startswith("--config-dir=")]
    return [*map(Path, found), CONF]


def unknown_choice(arguments: list[str]) -> str | None:
    """One line for a command-line choice of a config group (data=…, +experiment=…) that has no
    config file, instead of Hydra's multi-line composition error."""
    folders = config_dirs(arguments)
    for argument in arguments:
        key, _, value = argument.partition("=")
        group = key.lstrip("+~").split("@")[0]
        if not value or "(" in value or group.startswith("hydra") or not (CONF / group).is_dir():
            continue
        allowed = sorted({path.stem for folder in folders for path in (folder / group).glob("*.yaml")})
        for choice in value.split(","):
            if choice not in allowed:
                return f"{group}: {choice!r} is not one of {', '.join(allowed)}"
    return None


def help_text() -> str:
    """The keys of conf/config.yaml as its lines say them (value and comment), then each group's choices."""
    keys = []
    for line in (CONF / "config.yaml").read_text().splitlines():
        if line.startswith("hydra:"):
            break
        if line and not line.startswith(("#", "defaults", "  -")):
            keys.append(f"  {line}")
    groups = [f"  {'+' * (group == 'experiment')}{group}=: {', '.join(sorted(p.stem for p in (CONF / group).glob('*.yaml')))}"
              for group in ("data", "model", "tracking", "launcher", "experiment")]
    return "\n".join([
        "python -m harness [KEY=VALUE ...]         train and track one job",
        "python -m harness -m KEY=V1,V2 ...        a sweep: one job per combination (dry_run=true lists them)",
        "python -m harness --cfg job [KEY=VALUE]   show the whole config of a job",
        "python -m harness --config-dir DIR ...    also compose the configs of DIR (DIR/experiment/NAME.yaml: +experiment=NAME)",
        "harness report --experiment NAME           the report of its latest sweep (python -m analysis report --help)",
        "", "Settings (conf/config.yaml: default and meaning):", *keys,
        "", "Groups (GROUP=CHOICE; a group's own keys as data.n=500, model.hidden=[100]):", *groups,
        "", "Named studies: experiments/README.md. Hydra's own options: --hydra-help."])


def refused(arguments: list[str]) -> str | None:
    """One line for command lines Hydra would answer with a traceback or that would not do what they say."""
    if {"-m", "--multirun"} & set(arguments) and {"-c", "--cfg", "--info"} & set(arguments):
        return "--cfg shows one job's config: drop -m (python -m harness --cfg job lr=1), or list a sweep's jobs with dry_run=true"
    return unknown_choice(arguments)


def subcommand(arguments: list[str]):
    """The function of `harness COMMAND …` (`report`: analysis's), or None for a job or a sweep."""
    if not arguments or "=" in arguments[0] or arguments[0].startswith("-"):
        return None
    found = entry_points(group="harness.commands", name=arguments[0])
    return next(iter(found)).load() if found else None


def stopped(stop: signals.Stopped) -> None:
    if sweep.current is not None:
        sweep.current.abort("KILLED", stop.reason)
    exit_with(f"stopped: {stop.reason}; the runs of this launch are marked KILLED", stop.exit_code)


def cli() -> None:
    # the imports' objects (MLflow, pandas, SciPy) live as long as the process: frozen, the garbage
    # collector's full passes (and the interpreter's last ones at exit) walk only what comes after
    gc.freeze()
    arguments = sys.argv[1:]
    command = subcommand(arguments)
    if command is not None:
        return command(arguments)
    if {"-h", "--help"} & set(arguments):
        print(help_text())
        sys.exit(0)
    problem = refused(arguments)
    if problem:
        exit_with(f"error: {problem}", 2)
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    console.through_the_root()  # before MLflow is imported
    with signals.handled():
        try:
            main()
        except ConfigError as error:
            exit_with(f"error: {error}", 2)
        except (HydraException, OmegaConfBaseException) as error:
            exit_with(f"error: {sweep.composition_error(error)}", 2)
        except signals.Stopped as stop:
            stopped(stop)
        except Exception as error:
            if signals.received is not None:  # raised inside a library's C code, the signal comes out wrapped
                stopped(signals.received)
            if sweep.current is not None:
                sweep.current.abort("FAILED", describe(error))
                exit_with(f"error: the sweep stopped: {describe(error)}; its unfinished runs are marked FAILED; "
                     f"launch the same command again to run what did not finish", 1)
            if isinstance(error, OSError) and error.filename:  # Hydra's output folder (outputs/, multirun/)
                exit_with(f"error: cannot write {error.filename} ({error.strerror}); run from a writable folder, "
                          f"or set hydra.run.dir (hydra.sweep.dir with -m) to one", 1)
            raise
        finally:
            gc.freeze()  # likewise for the interpreter's last passes, at exit


if __name__ == "__main__":
    cli()
