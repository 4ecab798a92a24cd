"""Fetch a file from public mirrors into a local folder, keeping it only if its sha256 is the
published one. The bytes go to a temporary file in the same folder and are renamed into place
once checked, so the folder never holds a partial or corrupted file under the real name."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

CHUNK = 1 << 16


class DownloadError(OSError):
    """No mirror served the file with the expected sha256; the message says what each one did."""


def fetch(name: str, folder: Path, mirrors: Sequence[str], sha256: str, timeout: float = 60) -> Path:
    """Download `name` into `folder` from the first mirror (a base URL) that serves it intact."""
    failures = []
    for mirror in mirrors:
        url = f"{mirror.rstrip('/')}/{name}"
        try:
            return _download(url, Path(folder) / name, sha256, timeout)
        except OSError as error:  # urllib's URLError and HTTPError are OSErrors, as is DownloadError
            failures.append(f"{url}: {error}")
    raise DownloadError(f"could not download {name}: " + "; ".join(failures))


def _download(url: str, target: Path, sha256: str, timeout: float) -> Path:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        size = int(response.headers.get("Content-Length") or 0) or None
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, tqdm(total=size, unit="B", unit_scale=True, desc=target.name) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise DownloadError(f"sha256 mismatch: expected {sha256}, got {digest.hexdigest()}")
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    return target
