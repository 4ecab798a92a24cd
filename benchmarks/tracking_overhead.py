"""What tracking costs: one MNIST run ([784, 30, 10], m = 10) trained with and without MLflow
tracking in the same process, from the same seed, the two arms alternating over --rounds rounds
(at least 5) on one BLAS thread; prints the median and spread of both times and of the overhead
of each round's tracked run over its untracked one. Target: at most 3%. Reads MNIST from
../shared/data/mnist beside the repository (or --mnist), else synthetic data of MNIST's shape.
The store is created before timing, as a user's store is.

    python benchmarks/tracking_overhead.py               # 10 epochs a run, several minutes
    python benchmarks/tracking_overhead.py --epochs 2    # a quick check
"""

import argparse
import tempfile
import time
from pathlib import Path

from timing import load as load_average, pin_blas, rounds, spread

import numpy as np
from omegaconf import OmegaConf

from harness import compose, store, tracking
from harness.data import Dataset, Split, load, one_hot
from harness.network import Network
from harness.job import fit
from harness.train import random_streams

MNIST = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"


def synthetic() -> Dataset:
    """Random inputs and labels of MNIST's shape and split sizes."""
    rng = np.random.default_rng(0)
    split = lambda n: Split(rng.random((n, 784)), one_hot(rng.integers(10, size=n), 10))
    return Dataset("mnist_shaped", "classification", split(50_000), split(10_000), split(10_000))


def timed_run(cfg, dataset: Dataset, client, experiment: str | None) -> float:
    """Seconds to train one run from the config's seed, tracked when `experiment` is given."""
    init_rng, sampling_rng = random_streams(cfg.seed)
    network = Network.from_sizes([dataset.n_in, *cfg.model.hidden, dataset.n_out], seed=init_rng)
    start = time.perf_counter()
    if experiment is None:
        fit(cfg, dataset, network, sampling_rng)
    else:
        with tracking.recorded(client, tracking.create_run(client, experiment, "overhead", {})) as recorder:
            recorder.log_inputs(cfg, dataset)
            result = fit(cfg, dataset, network, sampling_rng, on_epoch=recorder.log_epoch)
            recorder.finish(result, network)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--mnist", type=Path, default=MNIST)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of both arms (at least 5)")
    args = parser.parse_args()
    pinned = pin_blas(1)
    real = (args.mnist / "train-images-idx3-ubyte.gz").is_file()
    with tempfile.TemporaryDirectory() as folder:
        cfg = compose(["data=mnist", f"data.root={args.mnist}", "data.download=false",
                                           "model.hidden=[30]", "lr=3.0", "batch_size=10", f"epochs={args.epochs}",
                                           f"tracking.uri=sqlite:///{folder}/mlflow.db"])
        dataset = load(OmegaConf.to_container(cfg.data)) if real else synthetic()
        client = store.connect(cfg.tracking.uri)
        experiment = store.experiment_id(client, "overhead")
        print(f"{'MNIST' if real else 'synthetic data of MNIST shape'}, [784, 30, 10], m = 10, {args.epochs} epochs; {pinned}")
        print(f"at the start: {load_average()}")
        samples = rounds({"off": lambda: {"seconds": timed_run(cfg, dataset, client, None)},
                          "on": lambda: {"seconds": timed_run(cfg, dataset, client, experiment)}}, args.rounds)
        print(f"at the end:   {load_average()}")
    off, on = samples["off"]["seconds"], samples["on"]["seconds"]
    print(f"tracking off: {spread(off)}")
    print(f"tracking on:  {spread(on)}")
    print(f"overhead:     {spread([100 * (b - a) / a for a, b in zip(off, on)], '%')}  (each round's pair; target ≤ 3%)")


if __name__ == "__main__":
    main()
