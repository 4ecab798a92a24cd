"""Figures embedded in report.html: a plot survives the palette nearly unchanged, and a page whose
figures would make it larger than `PAGE_LIMIT` gets them scaled down until it fits."""

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from analysis import embed


def decoded(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


@pytest.fixture(scope="module")
def plot(tmp_path_factory):
    """A figure as the report draws them: curves with shaded bands, a legend, a grid, at dpi 150."""
    figure, ax = plt.subplots(figsize=(8, 4))
    x = np.linspace(0, 10, 300)
    for k, colour in enumerate(plt.cm.viridis(np.linspace(0, 1, 6))):
        y = np.exp(-x / (k + 1))
        ax.plot(x, y, color=colour, label=f"η = {k + 1}")
        ax.fill_between(x, 0.8 * y, 1.2 * y, color=colour, alpha=0.2)
    ax.set_yscale("log"), ax.grid(True), ax.legend()
    path = tmp_path_factory.mktemp("figures") / "plot.png"
    figure.savefig(path, dpi=150)
    plt.close(figure)
    return path


def test_a_plot_embedded_keeps_its_size_and_its_pixels_within_a_few_levels(plot):
    original = np.asarray(Image.open(plot).convert("RGB"), dtype=float)
    embedded = decoded(embed.data_uri(plot))
    assert embedded.size == Image.open(plot).size
    assert np.abs(np.asarray(embedded.convert("RGB"), dtype=float) - original).mean() < 2.0  # of 255 levels


def test_a_plot_embedded_takes_a_fraction_of_its_file(plot):
    assert len(embed.data_uri(plot)) < 0.6 * len(base64.b64encode(plot.read_bytes()))


def test_a_page_of_figures_too_large_for_the_limit_gets_them_scaled_down_until_it_fits(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (700, 1000, 3), dtype=np.uint8)  # compresses no smaller
    pngs = []
    for i in range(3):
        pngs.append(tmp_path / f"noise{i}.png")
        Image.fromarray(noise).save(pngs[-1])
    page = lambda scale: "<html>" + "".join(f'<img src="{embed.data_uri(png, scale)}">' for png in pngs) + "</html>"
    assert len(page(1.0).encode()) > embed.PAGE_LIMIT
    fitted = embed.fitted(page)
    assert len(fitted.encode()) <= embed.PAGE_LIMIT
    images = [decoded(uri) for uri in fitted.split('"')[1::2]]
    assert len(images) == 3 and all(0 < image.width < 1000 and image.height / image.width == pytest.approx(0.7, abs=0.01)
                                    for image in images)


def test_a_page_within_the_limit_keeps_its_figures_at_full_size(plot):
    page = lambda scale: f'<img src="{embed.data_uri(plot, scale)}">'
    assert embed.fitted(page) == page(1.0)
