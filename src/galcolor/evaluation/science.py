"""What colour means to an astronomer, measured: radial colour profiles (red bulges, blue disks)
and blue star-forming knots, each predicted against true.

Geometry always comes from the true lightness (prediction and truth share L), so both profiles are
taken over exactly the same annuli.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .metrics import SIGNAL_L

# Annulus edges in units of the flux-weighted second-moment radius of the galaxy.
RADIAL_EDGES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
INNER, OUTER = 0, 2  # the gradient is mean b* in annulus INNER minus annulus OUTER
KNOT_B = -8.0  # b* below this (true) marks a blue, star-forming pixel
KNOT_PIXELS = (3, 400)  # a knot is compact: between these many pixels


@dataclass(frozen=True)
class Ellipse:
    centre_y: float
    centre_x: float
    inverse_covariance: np.ndarray  # (2, 2); radius^2 = d^T C^-1 d

    def radius(self, shape: tuple[int, int]) -> np.ndarray:
        y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
        d = np.stack([y - self.centre_y, x - self.centre_x], axis=-1).astype(np.float64)
        return np.sqrt(np.einsum("...i,ij,...j->...", d, self.inverse_covariance, d))


def galaxy_ellipse(lightness: np.ndarray) -> Ellipse | None:
    """Flux-weighted centroid and second moments of the signal pixels of the component at the
    image centre (or the brightest one), None when there is no signal."""
    signal = lightness > SIGNAL_L
    labels, count = ndimage.label(signal)
    if count == 0:
        return None
    centre_label = labels[lightness.shape[0] // 2, lightness.shape[1] // 2]
    if centre_label == 0:
        sums = ndimage.sum(lightness, labels, index=np.arange(1, count + 1))
        centre_label = int(np.argmax(sums)) + 1
    ys, xs = np.nonzero(labels == centre_label)
    weights = lightness[ys, xs].astype(np.float64)
    cy, cx = np.average(ys, weights=weights), np.average(xs, weights=weights)
    dy, dx = ys - cy, xs - cx
    covariance = np.array(
        [[np.average(dy * dy, weights=weights), np.average(dy * dx, weights=weights)],
         [np.average(dy * dx, weights=weights), np.average(dx * dx, weights=weights)]]
    ) + np.eye(2) * 0.25  # a one-pixel source still has a size
    return Ellipse(cy, cx, np.linalg.inv(covariance))


def radial_profile(lab: np.ndarray, ellipse: Ellipse, signal: np.ndarray) -> np.ndarray:
    """Flux-weighted mean b* in each elliptical annulus (nan where an annulus has no signal)."""
    radius = ellipse.radius(lab.shape[:2])
    profile = np.full(len(RADIAL_EDGES) - 1, np.nan)
    for i, (low, high) in enumerate(zip(RADIAL_EDGES[:-1], RADIAL_EDGES[1:])):
        ring = signal & (radius >= low) & (radius < high)
        if ring.any():
            profile[i] = np.average(lab[..., 2][ring], weights=lab[..., 0][ring])
    return profile


def blue_knots(lab: np.ndarray, signal: np.ndarray) -> tuple[np.ndarray, int]:
    """Label compact connected regions of blue (b* < KNOT_B) signal pixels: (labels, count)."""
    labels, count = ndimage.label(signal & (lab[..., 2] < KNOT_B))
    if count == 0:
        return labels, 0
    sizes = ndimage.sum(np.ones_like(labels), labels, index=np.arange(1, count + 1))
    keep = np.zeros(count + 1, dtype=bool)
    keep[1:] = (sizes >= KNOT_PIXELS[0]) & (sizes <= KNOT_PIXELS[1])
    labels = np.where(keep[labels], labels, 0)
    return labels, int(keep.sum())


def _matched(labels: np.ndarray, count: int, other: np.ndarray) -> int:
    """How many labelled regions overlap the `other` mask on at least half of their pixels."""
    if count == 0:
        return 0
    ids = np.unique(labels[labels > 0])
    overlap = ndimage.mean(other.astype(np.float64), labels, index=ids)
    return int(np.sum(np.asarray(overlap) >= 0.5))


@dataclass
class ScienceAccumulator:
    """Pools radial profiles and knot matches over images."""

    true_profiles: list[np.ndarray] = field(default_factory=list)
    pred_profiles: list[np.ndarray] = field(default_factory=list)
    gradient_errors: list[float] = field(default_factory=list)
    true_knots: int = 0
    recalled_knots: int = 0
    predicted_knots: int = 0
    confirmed_knots: int = 0

    def add(self, true_lab: np.ndarray, pred_lab: np.ndarray) -> None:
        signal = true_lab[..., 0] > SIGNAL_L
        ellipse = galaxy_ellipse(true_lab[..., 0])
        if ellipse is not None:
            true_profile = radial_profile(true_lab, ellipse, signal)
            pred_profile = radial_profile(pred_lab, ellipse, signal)
            self.true_profiles.append(true_profile)
            self.pred_profiles.append(pred_profile)
            gradient_true = true_profile[INNER] - true_profile[OUTER]
            gradient_pred = pred_profile[INNER] - pred_profile[OUTER]
            if np.isfinite(gradient_true) and np.isfinite(gradient_pred):
                self.gradient_errors.append(abs(gradient_pred - gradient_true))
        true_labels, true_count = blue_knots(true_lab, signal)
        pred_labels, pred_count = blue_knots(pred_lab, signal)
        self.true_knots += true_count
        self.predicted_knots += pred_count
        self.recalled_knots += _matched(true_labels, true_count, pred_labels > 0)
        self.confirmed_knots += _matched(pred_labels, pred_count, true_labels > 0)

    def summary(self) -> dict[str, float]:
        def ratio(a: int, b: int) -> float:
            return a / b if b else float("nan")

        return {
            "gradient_err": float(np.mean(self.gradient_errors)) if self.gradient_errors else float("nan"),
            "knot_recall": ratio(self.recalled_knots, self.true_knots),
            "knot_precision": ratio(self.confirmed_knots, self.predicted_knots),
            "true_knots": self.true_knots,
        }

    def mean_profiles(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.true_profiles:
            empty = np.full(len(RADIAL_EDGES) - 1, np.nan)
            return empty, empty
        return np.nanmean(np.stack(self.true_profiles), axis=0), np.nanmean(np.stack(self.pred_profiles), axis=0)
