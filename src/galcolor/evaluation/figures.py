"""Figures for reports: image comparison grids and predicted-vs-true colour scatter plots.

Uses matplotlib's object API with the Agg canvas only (never pyplot, never a display), so nothing
is registered globally and each figure is freed once it goes out of scope. PNGs are rendered to
memory and written atomically with ``galcolor.io.atomic_write_bytes``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from galcolor.io.atomic import atomic_write_bytes

DPI = 100
CELL_INCHES = 2.4
TITLE_INCHES = 0.35
LEFT_INCHES = 0.45
BACKGROUND = "#111111"
FOREGROUND = "#eeeeee"
SPIRAL_COLOUR = "#4c9be8"
OTHER_COLOUR = "#e8794c"

Row = tuple[str, np.ndarray, np.ndarray, "np.ndarray | None"]


def _save_png(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, facecolor=fig.get_facecolor())
    finally:
        fig.clear()
    atomic_write_bytes(Path(path), buf.getvalue())


def _displayable(image: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{what}: expected an (H, W) or (H, W, 3) image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    return arr


def comparison_figure(rows: Sequence[Row], path: Path) -> None:
    """Save a grid of ``grey | predicted | real`` images, one row per (title, grey, pred, real).

    The "real" column is left out when every row's real image is None (a blank cell is drawn for
    a None in a grid that has the column).
    """
    rows = list(rows)
    if not rows:
        raise ValueError("comparison_figure needs at least one row")
    has_real = any(row[3] is not None for row in rows)
    headers = ["grey", "predicted", "real"] if has_real else ["grey", "predicted"]
    n_rows, n_cols = len(rows), len(headers)
    width = LEFT_INCHES + n_cols * CELL_INCHES
    height = TITLE_INCHES + n_rows * CELL_INCHES
    fig = Figure(figsize=(width, height), facecolor=BACKGROUND)
    fig.subplots_adjust(
        left=LEFT_INCHES / width,
        right=1.0,
        bottom=0.0,
        top=1.0 - TITLE_INCHES / height,
        wspace=0.03,
        hspace=0.03,
    )
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, (title, grey, pred, real) in enumerate(rows):
        images = [grey, pred, real][:n_cols]
        for c, image in enumerate(images):
            ax = axes[r][c]
            ax.set_facecolor(BACKGROUND)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if image is not None:
                ax.imshow(_displayable(image, f"row {r} ({title}) {headers[c]}"),
                          interpolation="nearest")
            if r == 0:
                ax.set_title(headers[c], color=FOREGROUND, fontsize=10)
            if c == 0:
                ax.set_ylabel(str(title), color=FOREGROUND, fontsize=9)
    _save_png(fig, path)


def scatter_figure(
    x,
    y,
    labels,
    path: Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
) -> None:
    """Save a scatter of y (predicted) against x (true), spirals (label 1) and non-spirals
    (label 0) in two colours with a legend, and the y = x line. ``labels`` may be None (one
    colour); points with a non-finite coordinate are left out."""
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"x and y lengths differ: {xa.size} vs {ya.size}")
    if labels is None:
        lab = np.full(xa.shape, -1)
    else:
        lab = np.asarray([-1 if v is None else int(v) for v in np.asarray(labels, dtype=object)
                          .ravel()])
        if lab.shape != xa.shape:
            raise ValueError(f"labels length {lab.size} does not match {xa.size} points")
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya, lab = xa[keep], ya[keep], lab[keep]

    fig = Figure(figsize=(5.0, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    groups = [(1, "spirals", SPIRAL_COLOUR), (0, "non-spirals", OTHER_COLOUR),
              (-1, "unlabelled", "#777777")]
    for value, name, colour in groups:
        sel = lab == value
        if sel.any():
            ax.scatter(xa[sel], ya[sel], s=14, alpha=0.75, color=colour,
                       label=f"{name} (n={int(sel.sum())})", edgecolors="none")
    if xa.size:
        lo = float(min(xa.min(), ya.min()))
        hi = float(max(xa.max(), ya.max()))
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        lo, hi = lo - pad, hi + pad
    else:
        lo, hi = -1.0, 1.0
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1.0, linestyle="--", label="y = x")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    _save_png(fig, path)


def profile_figure(edges, true_profile, predicted: dict, path: Path) -> None:
    """Mean b* per elliptical annulus: the truth as a thick line, each method beside it."""
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    fig = Figure(figsize=(5.5, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(centres, true_profile, color="black", linewidth=2.5, marker="o", label="truth")
    for name, profile in predicted.items():
        ax.plot(centres, profile, linewidth=1.2, marker=".", label=name)
    ax.axhline(0.0, color="#999999", linewidth=0.8)
    ax.set_xlabel("elliptical radius (second-moment radii)")
    ax.set_ylabel("mean b* (blue < 0 < yellow/red)")
    ax.set_title("Radial colour profile")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    _save_png(fig, path)
