"""What evaluating costs beside training: one evaluation of every split of MNIST (70,000 inputs,
[784, 30, 10]) by `harness.train.Evaluator`, the whole-split forward pass it replaced
(`Network.feedforward` on each split, then the same costs and accuracies), one evaluation
without the training split (what `measure.train_split_every` leaves out of all but every k-th),
and one training epoch at m = 10, the arms alternating over --rounds rounds (at least 5) on
--threads BLAS threads. Prints the median and spread of each time and of each round's evaluation
/ epoch, also averaged over k evaluations of which one has the training split. Target: one
evaluation at most 0.3× a training epoch at m = 10. Reads MNIST from ../shared/data/mnist beside
the repository (or --mnist).

    python benchmarks/evaluation.py
    python benchmarks/evaluation.py --every 5
"""

import argparse
from pathlib import Path

import numpy as np

from harness.data import Mnist
from harness.network import Network
from harness.train import Evaluator, random_streams, train
from timing import load, pin_blas, rounds, spread, timed

MNIST = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"


def whole_splits(network: Network, data) -> dict:
    """The previous evaluation: each split's outputs in one product per layer, in new arrays."""
    metrics = {}
    for name, split in (("train", data.train), ("validation", data.validation), ("test", data.test)):
        output = network.feedforward(split.X)
        metrics[f"{name}_cost"] = network.cost_function.total(output, split.Y) / len(split)
        if name != "train":
            metrics[f"{name}_accuracy"] = float(np.mean(np.argmax(output, axis=1) == split.labels))
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=MNIST)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every arm (at least 5)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (training at m = 10 uses 1)")
    parser.add_argument("--every", type=int, default=5, help="k of measure.train_split_every for the averaged figure")
    args = parser.parse_args()
    pinned = pin_blas(args.threads)
    data = Mnist(root=str(args.mnist), download=False).load()
    init, sampling = random_streams(0)
    network = Network.from_sizes([784, 30, 10], seed=init)
    evaluate = Evaluator(network, data)
    assert evaluate() == whole_splits(network, data), "the two evaluations disagree"
    inputs = len(data.train) + len(data.validation) + len(data.test)
    print(f"MNIST, {inputs} inputs to evaluate, [784, 30, 10]; {pinned}")
    print(f"at the start: {load()}")
    samples = rounds({"evaluation": lambda: {"seconds": timed(evaluate)[0]},
                      "without training split": lambda: {"seconds": timed(evaluate, False)[0]},
                      "whole splits": lambda: {"seconds": timed(whole_splits, network, data)[0]},
                      "epoch": lambda: {"seconds": train(network, data, 3.0, 10, 1, sampling).final["train_time"]}},
                     args.rounds)
    print(f"at the end:   {load()}")
    evaluation, partial, whole, epoch = (samples[arm]["seconds"] for arm in
                                         ("evaluation", "without training split", "whole splits", "epoch"))
    k = args.every
    averaged = [(e + (k - 1) * p) / k for e, p in zip(evaluation, partial)]
    print(f"evaluation (chunks):             {spread(evaluation)}")
    print(f"whole-split forward (previous):  {spread(whole)}")
    print(f"training epoch, m = 10:          {spread(epoch)}")
    print(f"evaluation / epoch:              {spread([e / t for e, t in zip(evaluation, epoch)], '×')}  (target ≤ 0.3×)")
    print(f"previous evaluation / epoch:     {spread([w / t for w, t in zip(whole, epoch)], '×')}")
    print(f"without the training split:      {spread(partial)}, / epoch {spread([p / t for p, t in zip(partial, epoch)], '×')}")
    print(f"measure.train_split_every={k}, per evaluation / epoch: {spread([a / t for a, t in zip(averaged, epoch)], '×')}")


if __name__ == "__main__":
    main()
