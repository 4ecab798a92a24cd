"""The harness's folder in the user's cache ($XDG_CACHE_HOME, else ~/.cache): downloaded datasets
(`data.cache_root`) and the empty store that new SQLite stores are copied from (`store.template`)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "harness"
