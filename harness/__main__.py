"""`python -m harness`: one job, or a sweep with `-m`, composed by Hydra from `conf/`."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from .config import ConfigError
from .run import run

CONF = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(config_path=CONF, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> dict:
    try:
        return run(cfg)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
