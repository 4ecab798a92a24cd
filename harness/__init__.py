"""harness: train NumPy networks by gradient descent, sweep with Hydra, track in MLflow.

`harness.train` is the module of the training loop (`from harness.train import train`)."""

__version__ = "0.1.0"  # the one place: pyproject.toml reads it
from .data import Dataset, Split
from .measure import Measurements
from .network import Network
from .train import Result, random_streams

__all__ = ["Dataset", "Measurements", "Network", "Result", "Split", "compose", "random_streams", "train_from_config"]


def __getattr__(name: str):
    """`compose` and `train_from_config` bring Hydra and MLflow: imported when first used, so the
    network and the training loop alone do without them (PEP 562)."""
    if name in ("compose", "train_from_config"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
