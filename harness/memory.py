"""Does a setting's memory fit: the bytes it asks for, compared with the memory available, before
they are allocated. NumPy would otherwise try, and fail with a traceback (or, where the system
lends memory it does not have, be killed later)."""

from __future__ import annotations

import os

from .errors import ConfigError
from .network import n_parameters


def available() -> int:
    """Bytes the system can give without swapping: /proc/meminfo's MemAvailable, else the free pages."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def size_text(n: float) -> str:
    """1.5 GiB, 120 MiB, 7.3 TiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024


def check(setting: str, needed: int, what: str) -> None:
    """Raise ConfigError naming `setting` if `needed` bytes (for `what`) exceed the memory available."""
    free = available()
    if needed > free:
        raise ConfigError(f"{setting} needs at least {size_text(needed)} of memory for {what}; "
                          f"{size_text(free)} is available")


def check_network(hidden: list[int], sizes: list[int], batch: int, itemsize: int) -> None:
    """A network of these layer `sizes` (`hidden` as model.hidden says them) fits, with the
    buffers of training on batches of `batch` inputs."""
    # θ and its gradient, and a batch's activations, errors and σ' of every layer
    needed = (2 * n_parameters(sizes) + 3 * batch * sum(sizes[1:])) * itemsize
    check(f"model.hidden: {hidden}", needed, f"a network of layers {sizes} trained on batches of {batch}")
