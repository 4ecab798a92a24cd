"""Figures embedded in a report's HTML page, so that the page shows alone (in a browser, in the
MLflow UI's artifact view) and stays small enough to load at once: each PNG is quantised to a
palette of 256 colours, which a plot's flat colours and smoothed lines survive while the file
shrinks about threefold, and only a page still over `PAGE_LIMIT` gets its figures scaled down
as well. The figure files beside the page keep their full resolution.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Callable

from PIL import Image

PAGE_LIMIT = 1_000_000  # bytes of report.html
SHRINK = 0.8  # each further try scales the sides of the embedded figures by this
SMALLEST = 0.3  # ... down to this scale at most: smaller, a figure's labels no longer read


def data_uri(png: Path, scale: float = 1.0) -> str:
    """The PNG at `png` as a data URI, palette-quantised, its sides scaled by `scale`."""
    image = Image.open(png).convert("RGBA")
    image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")  # as the page shows it
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.LANCZOS)
    # no dithering: it would scatter noise over the flat colours a plot is made of
    palette = image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    palette.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def fitted(page: Callable[[float], str], limit: int = PAGE_LIMIT) -> str:
    """`page(scale)`, the HTML text with its figures embedded at `scale`, at the largest scale of
    1, SHRINK, SHRINK², … (down to SMALLEST) whose UTF-8 encoding fits in `limit` bytes."""
    scale, text = 1.0, page(1.0)
    while len(text.encode()) > limit and scale * SHRINK >= SMALLEST:
        scale *= SHRINK
        text = page(scale)
    return text
