"""harness: train NumPy networks by gradient descent, sweep with Hydra, track in MLflow."""

from .data import Dataset, Split
from .network import Network
from .train import Result, train

__all__ = ["Dataset", "Network", "Result", "Split", "train"]
