"""The feed-forward network: activations, costs and backpropagation in matrix form.

Examples are rows. A mini-batch X has shape (m, n_in) and layer l computes

    z^l = a^{l-1} (W^l)ᵀ + b^l,        a^l = σ(z^l)                      (feedforward)

with W^l of shape (n_l, n_{l-1}), as in Nielsen's "Neural Networks and Deep Learning", ch. 1-2.
The cost of a set of n inputs is the mean of per-example costs, C = (1/n) Σₓ C_x, so the
gradient of a mini-batch is the mean of its per-example gradients. Backpropagation (BP1-BP4)
runs on the whole mini-batch at once: one matrix product per layer and direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.special import expit


@dataclass(frozen=True)
class Activation:
    """σ and its derivative written in terms of the output a = σ(z), so z need not be kept."""

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    prime_from_output: Callable[[np.ndarray], np.ndarray]


ACTIVATIONS = {
    "sigmoid": Activation("sigmoid", expit, lambda a: a * (1 - a)),
    "tanh": Activation("tanh", np.tanh, lambda a: 1 - a * a),
    "relu": Activation("relu", lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(a.dtype)),
    "identity": Activation("identity", lambda z: z, np.ones_like),
}


@dataclass(frozen=True)
class Cost:
    """A per-example cost C_x(a, y), summed over examples, and ∂C_x/∂a."""

    name: str
    total: Callable[[np.ndarray, np.ndarray], float]
    grad_output: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _cross_entropy_total(a: np.ndarray, y: np.ndarray) -> float:
    # C_x = -Σ_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)]   (Nielsen eq. 63); 0·ln 0 taken as 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(y > 0, y * np.log(a), 0.0) + np.where(y < 1, (1 - y) * np.log1p(-a), 0.0)
    return float(-terms.sum())


COSTS = {
    # C_x = ½‖y − a‖²   (Nielsen eq. 6)
    "quadratic": Cost("quadratic", lambda a, y: 0.5 * float(np.sum((a - y) ** 2)), lambda a, y: a - y),
    "cross_entropy": Cost("cross_entropy", _cross_entropy_total, lambda a, y: (a - y) / (a * (1 - a))),
}

INITS = ("normal", "scaled")


class Network:
    """Weights W^l and biases b^l of a feed-forward network, with its cost and gradients."""

    def __init__(
        self,
        weights: Sequence[np.ndarray],
        biases: Sequence[np.ndarray],
        activation: str = "sigmoid",
        output: str = "sigmoid",
        cost: str = "quadratic",
    ):
        if len(weights) != len(biases) or not weights:
            raise ValueError("weights and biases: need one of each per layer, at least one layer")
        self.weights = [np.array(w) for w in weights]
        self.biases = [np.array(b) for b in biases]
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise ValueError(f"layer {l}: weights must be (n_out, n_in) and biases (n_out,)")
            if l and w.shape[1] != self.weights[l - 1].shape[0]:
                raise ValueError(f"layer {l}: takes {w.shape[1]} inputs, previous layer gives {self.weights[l - 1].shape[0]}")
        self.hidden = ACTIVATIONS[activation]
        self.output = ACTIVATIONS[output]
        self.cost_function = COSTS[cost]

    @classmethod
    def from_sizes(
        cls,
        sizes: Sequence[int],
        seed: int | np.random.Generator = 0,
        init: str = "normal",
        dtype: str = "float64",
        **kwargs,
    ) -> "Network":
        """Draw weights and biases from N(0, 1) ("normal", as in the book) or weights from
        N(0, 1/n_in) ("scaled"), in float64 for every dtype so both dtypes start alike."""
        if init not in INITS:
            raise ValueError(f"init: {init!r} is not one of {', '.join(INITS)}")
        rng = np.random.default_rng(seed)
        weights, biases = [], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            scale = 1.0 if init == "normal" else 1.0 / np.sqrt(n_in)
            weights.append((rng.standard_normal((n_out, n_in)) * scale).astype(dtype))
            biases.append(rng.standard_normal(n_out).astype(dtype))
        return cls(weights, biases, **kwargs)

    @property
    def sizes(self) -> list[int]:
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    @property
    def dtype(self) -> np.dtype:
        return self.weights[0].dtype

    def _activation(self, l: int) -> Activation:
        return self.output if l == len(self.weights) - 1 else self.hidden

    def forward(self, X: np.ndarray) -> list[np.ndarray]:
        """Activations a^0 = X, a^1, ..., a^L of every layer."""
        activations = [X]
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            activations.append(self._activation(l).f(activations[-1] @ w.T + b))
        return activations

    def feedforward(self, X: np.ndarray) -> np.ndarray:
        a = X
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            a = self._activation(l).f(a @ w.T + b)
        return a

    def cost(self, X: np.ndarray, Y: np.ndarray) -> float:
        """C = (1/n) Σₓ C_x over the n rows of X."""
        return self.cost_function.total(self.feedforward(X), Y) / len(X)

    def gradient(self, X: np.ndarray, Y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """∂C/∂W^l and ∂C/∂b^l for C the mean cost over the m rows of X, by backpropagation."""
        activations = self.forward(X)
        a_out = activations[-1]
        # BP1, with the 1/m of the mean folded in once
        delta = self.cost_function.grad_output(a_out, Y) * self.output.prime_from_output(a_out) / len(X)
        grad_w, grad_b = [], []
        for l in range(len(self.weights) - 1, -1, -1):
            grad_w.append(delta.T @ activations[l])  # BP4
            grad_b.append(delta.sum(axis=0))  # BP3
            if l:
                delta = (delta @ self.weights[l]) * self.hidden.prime_from_output(activations[l])  # BP2
        return grad_w[::-1], grad_b[::-1]

    def step(self, X: np.ndarray, Y: np.ndarray, lr: float) -> None:
        """One gradient-descent update on the mini-batch (X, Y): w → w − η ∂C/∂w, b → b − η ∂C/∂b."""
        grad_w, grad_b = self.gradient(X, Y)
        for w, b, gw, gb in zip(self.weights, self.biases, grad_w, grad_b):
            w -= lr * gw
            b -= lr * gb

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The class of each row: the index of the most active output neuron."""
        return np.argmax(self.feedforward(X), axis=1)
