"""Optional measurements of a training run beyond the per-epoch costs: costs and accuracies at
chosen update counts (every k updates, or N log-spaced points per decade of updates), so that
"updates to reach a target" is read off a measured point rather than guessed between epochs; the
mini-batch cost every k steps, the norm of the full training gradient each epoch, and the gradient noise scale
B_simple = tr(Σ)/|G|² (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training")
every k steps. All are off by default; none of them draws from the sampling stream, so turning
one on does not change the run's trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import Network


@dataclass
class Measurements:
    batch_cost_every: int = 0  # log the mini-batch cost C on the batch before every k-th update; 0: never
    grad_norm: bool = False  # log ‖∂C/∂θ‖ of the whole training set at the end of each epoch
    noise_scale_every: int = 0  # estimate B_simple after every k-th update; 0: never
    noise_probe: int = 100  # B, the inputs of the probe batch for B_simple (at least 2)
    eval_every: int = 0  # evaluate every split after every k-th update; 0: never
    eval_per_decade: int = 0  # evaluate every split at N log-spaced update counts per decade; 0: never
    train_split_every: int = 1  # evaluate the training split at every k-th evaluation only; 1: at each


def eval_schedule(measure: Measurements, total_updates: int) -> set[int]:
    """The update counts (1 … total_updates) after which the run evaluates its splits: every k-th
    update, and round(10^(i/N)) for i = 0, 1, …, which puts N points in each decade so that the
    first updates, where a large step size changes most, are seen as finely as the last."""
    points = set(range(measure.eval_every, total_updates + 1, measure.eval_every)) if measure.eval_every else set()
    if measure.eval_per_decade:
        i = 0
        while (point := round(10 ** (i / measure.eval_per_decade))) <= total_updates:
            points.add(point)
            i += 1
    return points


def train_split_due(measure: Measurements, scheduled: set[int], last_epoch: int):
    """When the training split is evaluated too: at epoch 0, every k-th epoch and the last one, and
    at every k-th of the scheduled update counts (k = `measure.train_split_every`). It is the
    largest split of most data sets, and its cost the one a run is judged to diverge by."""
    k = measure.train_split_every
    at_updates = set(sorted(scheduled)[k - 1::k])
    return (lambda epoch: epoch % k == 0 or epoch == last_epoch), at_updates


def squared_norm(gradient: tuple[list[np.ndarray], list[np.ndarray]]) -> float:
    """‖∂C/∂θ‖² over every weight and bias, summed in float64."""
    grad_w, grad_b = gradient
    return float(sum(np.sum(np.square(g, dtype=np.float64)) for g in grad_w + grad_b))


def gradient_norm(network: Network, X: np.ndarray, Y: np.ndarray) -> float:
    """‖∂C/∂θ‖ for C the mean cost over the rows of X."""
    return float(np.sqrt(squared_norm(network.gradient(X, Y))))


def gradient_noise(network: Network, X: np.ndarray, Y: np.ndarray) -> tuple[float, float]:
    """Unbiased estimates of tr(Σ) and |G|² from the B per-example gradients g_x of a probe batch
    (McCandlish et al., app. A.1, with B_small = 1 and B_big = B), where G is the true gradient
    and Σ the covariance of per-example gradients: tr(Σ) is the sum of the per-parameter sample
    variances, (Σₓ|g_x|² − B|ḡ|²)/(B − 1), and since E|ḡ|² = |G|² + tr(Σ)/B, |G|² ≈ |ḡ|² − tr(Σ)/B."""
    B = len(X)
    mean_sq = squared_norm(network.gradient(X, Y))
    trace = (float(np.sum(network.per_example_sq_norms(X, Y))) - B * mean_sq) / (B - 1)
    return trace, mean_sq - trace / B


def noise_scale(network: Network, X: np.ndarray, Y: np.ndarray) -> float | None:
    """B_simple = tr(Σ)/|G|² from a probe batch; None when the estimate of |G|² is not positive
    (the gradient is lost in the noise), where B_simple is undefined."""
    trace, signal = gradient_noise(network, X, Y)
    return trace / signal if signal > 0 else None
