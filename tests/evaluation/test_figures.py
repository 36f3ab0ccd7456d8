from __future__ import annotations

import gc
import sys

import numpy as np
import pytest
from PIL import Image

from galcolor.evaluation.figures import comparison_figure, scatter_figure


def _images(seed: int, size: int = 32):
    rng = np.random.default_rng(seed)
    grey = rng.integers(0, 256, (size, size), dtype=np.uint8)
    grey_rgb = np.repeat(grey[..., None], 3, axis=2)
    pred = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    real = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return grey_rgb, pred, real


def _open(path):
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "PNG"
        arr = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert arr.std() > 0
    return arr


def test_comparison_figure_three_and_two_columns(tmp_path):
    rows3 = []
    rows2 = []
    for i in range(2):
        grey, pred, real = _images(i)
        rows3.append((f"galaxy {i}", grey, pred, real))
        rows2.append((f"galaxy {i}", grey, pred, None))
    p3 = tmp_path / "three.png"
    p2 = tmp_path / "two.png"
    comparison_figure(rows3, p3)
    comparison_figure(rows2, p2)
    a3 = _open(p3)
    a2 = _open(p2)
    aspect3 = a3.shape[1] / a3.shape[0]
    aspect2 = a2.shape[1] / a2.shape[0]
    # two rows: roughly 3/2 wide-to-high with a real column, 2/2 without
    assert aspect3 == pytest.approx(1.5, rel=0.2)
    assert aspect2 == pytest.approx(1.0, rel=0.2)
    assert a3.shape[0] == a2.shape[0]
    assert a3.shape[1] > a2.shape[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["three.png", "two.png"]  # no temporaries


def test_comparison_figure_accepts_2d_grey_and_partial_real(tmp_path):
    grey, pred, real = _images(5)
    path = tmp_path / "mixed.png"
    comparison_figure([("a", grey[..., 0], pred, real), ("b", grey, pred, None)], path)
    arr = _open(path)
    assert arr.shape[1] / arr.shape[0] == pytest.approx(1.5, rel=0.2)


def test_comparison_figure_rejects_empty(tmp_path):
    with pytest.raises(ValueError):
        comparison_figure([], tmp_path / "x.png")


def test_scatter_figure(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = x + rng.normal(scale=0.2, size=40)
    labels = (x < 0).astype(int)
    path = tmp_path / "scatter.png"
    scatter_figure(x, y, labels, path, xlabel="true b*", ylabel="predicted b*", title="colour")
    _open(path)
    x[3] = np.nan
    path2 = tmp_path / "scatter_nolabels.png"
    scatter_figure(x, y, None, path2, xlabel="t", ylabel="p", title="no labels")
    _open(path2)


def test_no_pyplot_figures_left(tmp_path):
    grey, pred, real = _images(1)
    for i in range(3):
        comparison_figure([("g", grey, pred, real)], tmp_path / f"{i}.png")
        scatter_figure([1, 2, 3], [1, 2, 4], [0, 1, 0], tmp_path / f"s{i}.png",
                       xlabel="x", ylabel="y", title="t")
    gc.collect()
    if "matplotlib.pyplot" in sys.modules:
        assert not sys.modules["matplotlib.pyplot"].get_fignums()
