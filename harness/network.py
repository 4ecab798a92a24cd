"""The feed-forward network: activations, costs and backpropagation in matrix form.

As in Nielsen's "Neural Networks and Deep Learning", ch. 1-2, layer l computes from the column
vector a^{l-1} of the layer below

    z^l = W^l a^{l-1} + b^l,        a^l = σ(z^l)                          (feedforward)

with W^l of shape (n_l, n_{l-1}). A mini-batch of m inputs is the matrix whose columns are the
inputs, so the same equations, and backpropagation's, run on the whole batch at once, one matrix
product per layer and direction:

    δ^L = ∇_a C_x ⊙ σ'(z^L)                  (BP1)      Σₓ ∂C_x/∂b^l = δ^l 1            (BP3)
    δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l)     (BP2)      Σₓ ∂C_x/∂W^l = δ^l (a^{l-1})ᵀ   (BP4)

The cost of a set of n inputs is the mean of per-example costs, C = (1/n) Σₓ C_x, so the
gradient of a mini-batch is the mean of its per-example gradients.

Arrays in and out hold one example per row, as data sets do. In memory, such an (m, n) array is
its transpose, the (n, m) matrix of its columns, stored column by column as BLAS reads matrices:
`.T` gives the columns without copying. Inside, activations and errors are such column matrices,
and the weights are stored row by row, which BLAS reads as Wᵀ (the two products with W¹ take
10 µs at m = 10, against 14 µs with W¹ stored column by column). Every product is one BLAS call
(scipy's gemm or gemv), C ← α op(A) op(B) + β C. For BP3 and BP4 that is
T ← α Σₓ ∂C_x/∂T + β T: with the network's own W^l, b^l, α = −η/m and β = 1 it is the update
w → w − (η/m) Σₓ ∂C_x/∂w itself, made in place with no gradient array; into a gradient buffer,
with α = 1/m and β = 0, it is ∂C/∂w. Training calls `step` many thousand times on mini-batches
of one size, so backpropagation works in buffers kept per batch size (`Workspace`).

No product goes through NumPy's BLAS (`np.dot`, `@`): NumPy and scipy each bring their own
OpenBLAS with its own threads, and alternating between the two on two threads made training at
m = 1000 five times slower. BLAS arguments are passed by position, since f2py parses keywords
slowly (0.4 µs a call, 2% of a step at m = 10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.linalg import get_blas_funcs
from scipy.special import expit


@dataclass(frozen=True)
class Activation:
    """σ, and σ'(z) written in terms of the output a = σ(z) so z need not be kept; both write
    their result into `out` (which may be their input) and return it."""

    name: str
    f: Callable[[np.ndarray, np.ndarray], np.ndarray]
    prime_from_output: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _copy(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    if out is not z:
        np.copyto(out, z)
    return out


def _ones(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    out.fill(1)
    return out


ACTIVATIONS = {
    # σ' = a(1 − a)
    "sigmoid": Activation("sigmoid", expit, lambda a, out: np.multiply(a, np.subtract(1.0, a, out=out), out=out)),
    # tanh' = 1 − a²
    "tanh": Activation("tanh", lambda z, out: np.tanh(z, out=out),
                       lambda a, out: np.subtract(1.0, np.square(a, out=out), out=out)),
    # relu' = 1 where a > 0
    "relu": Activation("relu", lambda z, out: np.maximum(z, 0, out=out), lambda a, out: np.greater(a, 0, out=out)),
    "identity": Activation("identity", _copy, _ones),
}


@dataclass(frozen=True)
class Cost:
    """A per-example cost C_x(a, y), summed over examples, and ∂C_x/∂a written into `out`.
    `cancels` names the output activation whose σ'(z^L) the cost's gradient cancels in BP1, so
    that δ^L = a − y exactly (Nielsen eq. 66), without dividing by a(1 − a)."""

    name: str
    total: Callable[[np.ndarray, np.ndarray], float]
    grad_output: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    cancels: str | None = None


def _cross_entropy_total(a: np.ndarray, y: np.ndarray) -> float:
    # C_x = -Σ_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)]   (Nielsen eq. 63); 0·ln 0 taken as 0.
    # An output σ(z) that rounded to exactly 0 or 1 counts as the nearest number inside (0, 1),
    # so a saturated wrong output costs about -ln ε (36.7 in float64) rather than infinity.
    finfo = np.finfo(a.dtype)
    a = np.clip(a, finfo.tiny, 1 - finfo.epsneg)
    terms = np.where(y > 0, y * np.log(a), 0) + np.where(y < 1, (1 - y) * np.log1p(-a), 0)
    return float(-terms.sum())


def _cross_entropy_grad(a: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    # ∂C_x/∂a = (a − y) / (a(1 − a))
    return np.divide(a - y, a * (1 - a), out=out)


COSTS = {
    # C_x = ½‖y − a‖²   (Nielsen eq. 6), ∂C_x/∂a = a − y
    "quadratic": Cost("quadratic", lambda a, y: 0.5 * float(np.sum(np.square(a - y))),
                      lambda a, y, out: np.subtract(a, y, out=out)),
    "cross_entropy": Cost("cross_entropy", _cross_entropy_total, _cross_entropy_grad, cancels="sigmoid"),
}

INITS = ("normal", "scaled")


def layer_views(theta: np.ndarray, sizes: Sequence[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The (W^l, b^l) of every layer as views into one vector θ = (W¹, b¹, ..., W^L, b^L), each
    W^l row by row."""
    weights, biases, start = [], [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        weights.append(theta[start:start + n_out * n_in].reshape(n_out, n_in))
        start += n_out * n_in
        biases.append(theta[start:start + n_out])
        start += n_out
    return weights, biases


def n_parameters(sizes: Sequence[int]) -> int:
    return sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))


class Workspace:
    """Buffers for backpropagation on mini-batches of m inputs, one column per input: the
    activations a^1..a^L, the errors δ^1..δ^L, one scratch array per layer for σ', m ones that sum
    δ over the batch (BP3), and a gradient laid out like θ."""

    def __init__(self, m: int, sizes: Sequence[int], dtype: np.dtype):
        self.activations = [np.empty((n, m), dtype, order="F") for n in sizes[1:]]
        self.deltas = [np.empty((n, m), dtype, order="F") for n in sizes[1:]]
        self.scratch = [np.empty((n, m), dtype, order="F") for n in sizes[1:]]
        self.ones = np.ones(m, dtype)
        self.gradient = np.empty(n_parameters(sizes), dtype)
        self.grad_w, self.grad_b = layer_views(self.gradient, sizes)


class Network:
    """Weights W^l and biases b^l of a feed-forward network, with its cost and gradients.

    All parameters live in one vector `parameters` (θ); `weights` and `biases` are views into it,
    so an update of θ is one operation."""

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
        weights, biases = [np.asarray(w) for w in weights], [np.asarray(b) for b in biases]
        for l, (w, b) in enumerate(zip(weights, biases)):
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise ValueError(f"layer {l}: weights must be (n_out, n_in) and biases (n_out,)")
            if l and w.shape[1] != weights[l - 1].shape[0]:
                raise ValueError(f"layer {l}: takes {w.shape[1]} inputs, previous layer gives {weights[l - 1].shape[0]}")
            if w.dtype != weights[0].dtype or b.dtype != w.dtype:
                raise ValueError(f"layer {l}: weights and biases must all have one dtype, found {w.dtype} and {b.dtype}")
        for key, value, allowed in (("activation", activation, ACTIVATIONS), ("output", output, ACTIVATIONS),
                                    ("cost", cost, COSTS)):
            if value not in allowed:
                raise ValueError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
        self.parameters = np.concatenate([np.concatenate([w.ravel(), b]) for w, b in zip(weights, biases)])
        self.weights, self.biases = layer_views(self.parameters, [weights[0].shape[1]] + [w.shape[0] for w in weights])
        self.hidden = ACTIVATIONS[activation]
        self.output = ACTIVATIONS[output]
        self.activations = [self.hidden] * (len(weights) - 1) + [self.output]
        self.cost_function = COSTS[cost]
        self._gemm, self._gemv = get_blas_funcs(("gemm", "gemv"), dtype=self.dtype)
        self._workspaces: dict[int, Workspace] = {}

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
        return self.parameters.dtype

    def _workspace(self, m: int) -> Workspace:
        if m not in self._workspaces:
            if len(self._workspaces) >= 4:  # SGD needs two sizes (m and a short last batch)
                self._workspaces.clear()
            self._workspaces[m] = Workspace(m, self.sizes, self.dtype)
        return self._workspaces[m]

    def _feedforward(self, a: np.ndarray, activations: Sequence[np.ndarray]) -> np.ndarray:
        """a^L for the inputs that are the columns of `a`, with a^l written into activations[l - 1]."""
        for w, b, sigma, z in zip(self.weights, self.biases, self.activations, activations):
            np.copyto(z.T, b)  # z = W a + b: z starts as b in every column, and gemm adds W a (β = 1)
            # gemm(α, A, B, β, C, trans A, trans B, overwrite C), given W row by row, which is Wᵀ to BLAS
            self._gemm(1.0, w.T, a, 1.0, z, True, False, True)
            a = sigma.f(z, out=z)
        return a

    def feedforward(self, X: np.ndarray) -> np.ndarray:
        """The output a^L for every row of X, as rows."""
        X = np.asarray(X, self.dtype)
        return self._feedforward(X.T, [np.empty((n, len(X)), self.dtype, order="F") for n in self.sizes[1:]]).T

    def feedforward_into(self, X: np.ndarray, out: np.ndarray, hidden: Sequence[np.ndarray]) -> np.ndarray:
        """`feedforward` without allocating: a^L for the rows of X (in the network's dtype) written
        into the columns of `out` (n_L × len(X), column by column), the hidden layers' a^l into
        `hidden` (one column-major array per hidden layer, at least len(X) columns each)."""
        return self._feedforward(X.T, [a[:, :len(X)] for a in hidden] + [out])

    def cost(self, X: np.ndarray, Y: np.ndarray) -> float:
        """C = (1/n) Σₓ C_x over the n rows of X."""
        return self.cost_function.total(self.feedforward(X), Y) / len(X)

    def _backprop(self, X: np.ndarray, Y: np.ndarray, alpha: float, beta: float,
                  into: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None) -> Workspace:
        """Backpropagate the mini-batch (X, Y), leaving a^l and δ^l in a workspace, and set every
        W^l, b^l of `into` (contiguous arrays shaped like the network's; by default the workspace's
        gradient) to α Σₓ ∂C_x/∂W^l + β W^l and α Σₓ ∂C_x/∂b^l + β b^l."""
        work = self._workspace(len(X))
        into = into or (work.grad_w, work.grad_b)
        x, y = np.asarray(X, self.dtype).T, np.asarray(Y, self.dtype).T  # one column per input, in the network's dtype
        a = self._feedforward(x, work.activations)
        L = len(self.weights) - 1
        delta = work.deltas[L]
        if self.cost_function.cancels == self.output.name:
            np.subtract(a, y, out=delta)  # BP1 with σ'(z^L) cancelled (eq. 66)
        else:  # BP1: δ^L = ∇_a C_x ⊙ σ'(z^L)
            self.cost_function.grad_output(a, y, out=delta)
            delta *= self.output.prime_from_output(a, out=work.scratch[L])
        for l in range(L, -1, -1):
            delta, below = work.deltas[l], work.activations[l - 1] if l else x
            if l:  # BP2: δ^{l-1} = ((W^l)ᵀ δ^l) ⊙ σ'(z^{l-1}), before W^l may change
                self._gemm(1.0, self.weights[l].T, delta, 0.0, work.deltas[l - 1], False, False, True)
                work.deltas[l - 1] *= self.hidden.prime_from_output(below, out=work.scratch[l - 1])
            # BP4 into W^l stored row by row, that is into (W^l)ᵀ: a^{l-1} (δ^l)ᵀ
            self._gemm(alpha, below, delta, beta, into[0][l].T, False, True, True)
            # BP3: δ^l 1; gemv(α, A, x, β, y, offset x, step x, offset y, step y, trans A, overwrite y)
            self._gemv(alpha, delta, work.ones, beta, into[1][l], 0, 1, 0, 1, False, True)
        return work

    def gradient(self, X: np.ndarray, Y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """∂C/∂W^l and ∂C/∂b^l for C the mean cost over the m rows of X, by backpropagation,
        as new arrays."""
        work = self._backprop(X, Y, 1 / len(X), 0.0)
        return [g.copy() for g in work.grad_w], [g.copy() for g in work.grad_b]

    def per_example_sq_norms(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """‖∂C_x/∂θ‖² for each row x of X, over all weights and biases, without forming the
        per-example gradients: ∂C_x/∂W^l = δ_x^l (a_x^{l-1})ᵀ is an outer product, so its squared
        norm is ‖δ_x^l‖² ‖a_x^{l-1}‖², and ∂C_x/∂b^l = δ_x^l adds ‖δ_x^l‖²."""
        work = self._backprop(X, Y, 1.0, 0.0)
        sq_norms = np.zeros(len(X))
        for l, delta in enumerate(work.deltas):
            below = work.activations[l - 1] if l else np.asarray(X).T
            sq_norms += np.einsum("ij,ij->j", delta, delta) * (np.einsum("ij,ij->j", below, below) + 1)
        return sq_norms

    def step(self, X: np.ndarray, Y: np.ndarray, lr: float) -> None:
        """One gradient-descent update on the mini-batch (X, Y): w → w − η ∂C/∂w, b → b − η ∂C/∂b,
        with ∂C/∂w the mean over the batch (η/m Σₓ ∂C_x/∂w)."""
        self._backprop(X, Y, -lr / len(X), 1.0, (self.weights, self.biases))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The class of each row: the index of the most active output neuron."""
        return np.argmax(self.feedforward(X), axis=1)
