"""`python -m harness`: one job, or a sweep with `-m`, composed by Hydra from `conf/`."""

import sys

import hydra
from omegaconf import DictConfig

from .config import CONF, ConfigError
from .run import run



@hydra.main(config_path=str(CONF), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> dict:
    try:
        return run(cfg)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def unknown_choice(arguments: list[str]) -> str | None:
    """One line for a command-line choice of a config group (data=…, +experiment=…) that has no
    config file, instead of Hydra's multi-line composition error."""
    for argument in arguments:
        key, _, value = argument.partition("=")
        group = key.lstrip("+~").split("@")[0]
        folder = CONF / group
        if not value or "(" in value or group.startswith("hydra") or not folder.is_dir():
            continue
        allowed = sorted(path.stem for path in folder.glob("*.yaml"))
        for choice in value.split(","):
            if choice not in allowed:
                return f"{group}: {choice!r} is not one of {', '.join(allowed)}"
    return None


def cli() -> None:
    from . import tracking

    problem = unknown_choice(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    try:
        main()
    except tracking.Killed as killed:
        tracking.end_open_runs("KILLED")
        print(f"stopped by {killed}; its runs are marked KILLED", file=sys.stderr)
        sys.exit(128 + killed.signum)


if __name__ == "__main__":
    cli()
