"""Recording a job as an MLflow run: the resolved config as params and an artifact, the
per-epoch metrics (one batched call per epoch), the final status and the final weights.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
from omegaconf import DictConfig, OmegaConf

from .network import Network
from .train import Result


def flatten(node, prefix: str = "") -> dict[str, str]:
    """{"model.hidden": "[30]", "lr": "3.0", ...}: every leaf of the config under a dotted key."""
    flat = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def run_name(cfg: DictConfig, overrides: list[str]) -> str:
    """The overrides that make this run differ from the defaults, or its key settings."""
    return ",".join(overrides) or f"lr={cfg.lr},batch_size={cfg.batch_size},seed={cfg.seed}"


@contextmanager
def tracked_run(cfg: DictConfig, name: str, tags: dict[str, str]) -> Iterator["Tracker"]:
    """An MLflow run holding the resolved config; FAILED if the body raises."""
    mlflow.set_tracking_uri(cfg.tracking.uri)
    mlflow.set_experiment(cfg.tracking.experiment)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    with mlflow.start_run(run_name=name, tags=tags) as run:
        mlflow.log_params(flatten(resolved))
        mlflow.log_text(OmegaConf.to_yaml(resolved), "config.yaml")
        yield Tracker(run.info.run_id)


class Tracker:
    def __init__(self, run_id: str):
        self.run_id = run_id

    def log_epoch(self, epoch: int, metrics: dict) -> None:
        mlflow.log_metrics(metrics, step=epoch, synchronous=True)

    def log_result(self, result: Result, network: Network) -> None:
        tags = {"status": result.status}
        if result.diverged_epoch is not None:
            tags["diverged_epoch"] = str(result.diverged_epoch)
        mlflow.set_tags(tags)
        weights = {f"W{l + 1}": w for l, w in enumerate(network.weights)}
        weights.update({f"b{l + 1}": b for l, b in enumerate(network.biases)})
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "weights.npz"
            np.savez(path, **weights)
            mlflow.log_artifact(str(path))
