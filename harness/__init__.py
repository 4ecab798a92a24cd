"""harness: train NumPy networks by gradient descent, sweep with Hydra, track in MLflow."""

from .api import compose, train_from_config
from .data import Dataset, Split
from .measure import Measurements
from .network import Network
from .train import Result, random_streams, train

__all__ = ["Dataset", "Measurements", "Network", "Result", "Split", "compose", "random_streams", "train",
           "train_from_config"]
