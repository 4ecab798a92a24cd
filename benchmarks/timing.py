"""What every benchmark shares: BLAS threads pinned as the benchmark says, its arms alternated
and repeated, and each figure printed as its median and spread beside the machine's load.

Arms run in rounds, each arm once per round, in an order that flips every round (A B, B A, A B,
…), so that a change in the machine's load falls on every arm alike; a figure is the median of
its rounds, its spread the lowest and highest.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable

ROUNDS = 5  # the fewest rounds a benchmark runs


def pin_blas(threads: int) -> str:
    """BLAS threads for this process (threadpoolctl, for libraries already loaded) and for the
    processes it starts (the variables every BLAS reads when it loads)."""
    from threadpoolctl import threadpool_limits

    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    threadpool_limits(limits=threads)  # kept for the life of the process
    return f"BLAS threads pinned to {threads}"


def with_code(code) -> dict[str, str]:
    """This process's environment with the checkout at `code` first on PYTHONPATH (None: as it is),
    for a process that runs that checkout's code."""
    if code is None:
        return dict(os.environ)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")])}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min) on {os.cpu_count()} cores"


def timed(function: Callable, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value


def rounds(arms: dict[str, Callable[[], dict[str, float]]], n: int) -> dict[str, dict[str, list[float]]]:
    """Run every arm once per round for `n` rounds (at least ROUNDS), alternating their order;
    an arm returns its figures of that run by name. The samples, by arm and figure."""
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in arms}
    order = list(arms)
    for i in range(max(n, ROUNDS)):
        for name in order if i % 2 == 0 else order[::-1]:
            for figure, value in arms[name]().items():
                samples[name].setdefault(figure, []).append(value)
    return samples


def spread(values: list[float], unit: str = "s", digits: int = 3) -> str:
    """`1.23 s (1.20–1.31, 5 runs)`: the median, then the lowest and highest."""
    if not values:
        return "n/a"
    f = lambda v: f"{v:.{digits}g}"  # noqa: E731
    return f"{f(statistics.median(values))} {unit} ({f(min(values))}–{f(max(values))}, {len(values)} runs)".replace(" )", ")")


def share_of_limit(rate: float, limit: float) -> str:
    """A rate as a share of a measured limit; none above 100%: the limit was then measured low
    (the machine was busy while it was measured), and the share says nothing."""
    if rate > limit:
        return "n/a (above the limit measured: the limit was measured low)"
    return f"{100 * rate / limit:.1f}%"
