"""Training from Python (a notebook, a check of the engine) with the same configs and the same
job as the command line, without Hydra's command line: `compose` a config from overrides,
`train_from_config` it.

    import harness
    cfg = harness.compose(["lr=0.5", "data=blobs", "epochs=5"])
    result, network = harness.train_from_config(cfg)
    result.history[-1]["test_accuracy"]
"""

from __future__ import annotations

from typing import Sequence

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import DictConfig

from .config import CONF
from .job import Context, run
from .network import Network
from .train import Result


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The config `python -m harness OVERRIDES...` would run, e.g. compose(["lr=0.5", "data=blobs"])."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def train_from_config(cfg: DictConfig | Sequence[str] = (), track: bool = False) -> tuple[Result, Network]:
    """Check the config (or compose it from overrides), build its data and network, train, and
    return the result with the trained network. With track=True the run is recorded in MLflow
    (`cfg.tracking`) as a command-line job would be."""
    if not isinstance(cfg, DictConfig):
        cfg = compose(cfg)
    outcome = run(cfg, Context(track=track))
    return outcome.result, outcome.network
