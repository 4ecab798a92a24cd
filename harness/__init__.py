"""harness: train NumPy networks by gradient descent, sweep with Hydra, track in MLflow.

`harness.train` is the module of the training loop (`from harness.train import train`)."""

__version__ = "0.1.0"  # the one place: pyproject.toml reads it

from .api import compose, train_from_config
from .data import Dataset, Split
from .measure import Measurements
from .network import Network
from .train import Result, random_streams

__all__ = ["Dataset", "Measurements", "Network", "Result", "Split", "compose", "random_streams", "train_from_config"]
