"""What colour means to an astronomer, measured: radial colour profiles (red bulges, blue disks),
star-forming regions (compact regions bluer than the galaxy around them), red against blue galaxies,
and a neutral sky, each predicted against true, beside a baseline that sees no colour.

Geometry always comes from the true lightness (prediction and truth share L), so both profiles are
taken over exactly the same annuli. Regions are found in the truth at TRUE_EXCESS; a prediction's
regions are found at each of PREDICTED_EXCESSES (a model's damped colour needs its own threshold),
and the colour-free baseline's (bright compact clumps of L alone) at each of CLUMP_CONTRASTS. The
threshold-free `excess_rank` ranks the predicted blue excess against the true one, pixel by pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, stats
from skimage.filters import threshold_otsu

from ..inference.science import (
    INNER, OUTER, RADIAL_EDGES, REGION_MIN_L, REGION_PIXELS, SURROUNDINGS_SIGMA, TRUE_EXCESS, galaxy_ellipse,
    blue_excess, galaxy_mask, integrated_colour, radial_profile, regions_of, starforming_regions,
)
from .metrics import SIGNAL_L, roc_auc

PREDICTED_EXCESSES = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0)
CLUMP_CONTRASTS = (1.0, 2.0, 4.0, 6.0, 8.0, 12.0)  # L above its SURROUNDINGS_SIGMA-smoothed self
RECALL_FOR_PRECISION = 0.3  # precision is compared where each method first reaches this recall
SKY_MARGIN = 4  # px: sky pixels lie at least this far from any signal pixel
POINT_RADIUS = 2.5  # px: a point source's flux-weighted rms radius is at most this (SDSS seeing is about 1.5 px rms)
POINT_PEAK_L = 40.0  # and its peak at least this bright
FLAT_EXCESS = 1e-6  # b*: a blue excess that varies less than this over the galaxy is flat
RANKED_PIXELS = 20  # excess_rank is taken on galaxies with at least this many bright (L > REGION_MIN_L) pixels
__all__ = ["INNER", "OUTER", "RADIAL_EDGES", "TRUE_EXCESS", "ScienceAccumulator", "RegionTally", "lightness_clumps", "point_sources"]


def lightness_clumps(lightness: np.ndarray, contrast: float) -> tuple[np.ndarray, int]:
    """The colour-free baseline: compact bright regions of the galaxy, L at least `contrast` above its smoothed self."""
    galaxy = galaxy_mask(lightness)
    if galaxy is None:
        return np.zeros(lightness.shape, dtype=np.int32), 0
    peaks = lightness - ndimage.gaussian_filter(lightness.astype(np.float64), SURROUNDINGS_SIGMA)
    labels, count = ndimage.label(galaxy & (lightness > REGION_MIN_L) & (peaks >= contrast))
    if count == 0:
        return labels, 0
    sizes = ndimage.sum(np.ones_like(labels), labels, index=np.arange(1, count + 1))
    keep = np.zeros(count + 1, dtype=bool)
    keep[1:] = (sizes >= REGION_PIXELS[0]) & (sizes <= REGION_PIXELS[1])
    return np.where(keep[labels], labels, 0), int(keep.sum())


def point_sources(lightness: np.ndarray) -> np.ndarray:
    """(H, W) mask of point sources (foreground stars, mostly): separate components of signal, not the
    galaxy at the centre, at least 3 px, PSF-sized (rms radius <= POINT_RADIUS) and bright (peak >= POINT_PEAK_L).
    An unresolved compact galaxy passes too: from lightness alone it cannot be told from a star."""
    labels, count = ndimage.label(lightness > SIGNAL_L)
    found = np.zeros(lightness.shape, dtype=bool)
    galaxy = labels[lightness.shape[0] // 2, lightness.shape[1] // 2]
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        mask = labels[box] == index
        if index == galaxy or mask.sum() < 3:
            continue
        weights = lightness[box][mask].astype(np.float64)
        ys, xs = np.nonzero(mask)
        cy, cx = np.average(ys, weights=weights), np.average(xs, weights=weights)
        rms = np.sqrt((np.average((ys - cy) ** 2, weights=weights) + np.average((xs - cx) ** 2, weights=weights)) / 2)
        if rms <= POINT_RADIUS and weights.max() >= POINT_PEAK_L:
            found[box] |= mask
    return found


def _touching(labels: np.ndarray, count: int, other: np.ndarray) -> int:
    """How many labelled regions touch the `other` mask (within one pixel)."""
    if count == 0 or not other.any():
        return 0
    grown = ndimage.binary_dilation(other)
    ids = np.unique(labels[labels > 0])
    return int(np.sum(np.asarray(ndimage.maximum(grown.astype(np.float64), labels, index=ids)) > 0))


@dataclass
class RegionTally:
    """Recall and precision of found regions against the truth's, at each of several thresholds."""

    thresholds: tuple[float, ...]
    true_regions: int = 0
    recalled: np.ndarray = None
    found: np.ndarray = None
    confirmed: np.ndarray = None

    def __post_init__(self) -> None:
        self.recalled, self.found, self.confirmed = (np.zeros(len(self.thresholds), dtype=np.int64) for _ in range(3))

    def add(self, true_labels: np.ndarray, true_count: int, found: list[tuple[np.ndarray, int]]) -> None:
        self.true_regions += true_count
        for i, (labels, count) in enumerate(found):
            self.found[i] += count
            self.recalled[i] += _touching(true_labels, true_count, labels > 0)
            self.confirmed[i] += _touching(labels, count, true_labels > 0)

    def curve(self) -> list[tuple[float, float, float]]:
        """(threshold, recall, precision) at each threshold (precision nan where nothing was found)."""
        recall = self.recalled / self.true_regions if self.true_regions else np.full(len(self.thresholds), np.nan)
        precision = np.where(self.found > 0, self.confirmed / np.maximum(self.found, 1), np.nan)
        return [(t, float(r), float(p)) for t, r, p in zip(self.thresholds, recall, precision)]

    def summary(self, prefix: str = "sf") -> dict[str, float]:
        """The best-F1 operating point, and precision at RECALL_FOR_PRECISION (the strictest threshold that reaches it)."""
        curve = [(t, r, p) for t, r, p in self.curve() if np.isfinite(r) and np.isfinite(p)]
        if not curve:
            return {f"{prefix}_recall": float("nan"), f"{prefix}_precision": float("nan"), f"{prefix}_precision_at_recall": float("nan")}
        best = max(curve, key=lambda c: 2 * c[1] * c[2] / (c[1] + c[2]) if c[1] + c[2] else 0.0)
        reaching = [p for _, r, p in curve if r >= RECALL_FOR_PRECISION]
        return {f"{prefix}_recall": best[1], f"{prefix}_precision": best[2], f"{prefix}_threshold": best[0],
                f"{prefix}_precision_at_recall": max(reaching) if reaching else float("nan")}


@dataclass
class ScienceAccumulator:
    """Pools radial profiles, star-forming regions, integrated colours and sky chroma over images."""

    true_profiles: list[np.ndarray] = field(default_factory=list)
    pred_profiles: list[np.ndarray] = field(default_factory=list)
    gradient_errors: list[float] = field(default_factory=list)
    regions: RegionTally = field(default_factory=lambda: RegionTally(PREDICTED_EXCESSES))
    true_b: list[float] = field(default_factory=list)
    pred_b: list[float] = field(default_factory=list)
    sky_chroma: list[float] = field(default_factory=list)
    true_sky_chroma: list[float] = field(default_factory=list)
    excess_ranks: list[float] = field(default_factory=list)  # per image: excess_rank_correlation
    star_chroma: list[float] = field(default_factory=list)  # mean chroma over each image's point sources
    true_star_chroma: list[float] = field(default_factory=list)

    def add(self, true_lab: np.ndarray, pred_lab: np.ndarray, true_regions: tuple[np.ndarray, int] | None = None) -> None:
        """`true_regions`: the truth's star-forming regions where the caller has found them already."""
        lightness = true_lab[..., 0]
        signal = lightness > SIGNAL_L
        ellipse = galaxy_ellipse(lightness)
        if ellipse is not None:
            true_profile = radial_profile(true_lab, ellipse, signal)
            pred_profile = radial_profile(pred_lab, ellipse, signal)
            self.true_profiles.append(true_profile)
            self.pred_profiles.append(pred_profile)
            gradient_true = true_profile[INNER] - true_profile[OUTER]
            gradient_pred = pred_profile[INNER] - pred_profile[OUTER]
            if np.isfinite(gradient_true) and np.isfinite(gradient_pred):
                self.gradient_errors.append(abs(gradient_pred - gradient_true))
        true_labels, true_count = true_regions or starforming_regions(true_lab, TRUE_EXCESS)
        blue, galaxy = blue_excess(pred_lab, lightness), galaxy_mask(lightness)
        self.regions.add(true_labels, true_count, [regions_of(blue, lightness, t, galaxy) for t in PREDICTED_EXCESSES])
        if galaxy is not None and (inside := galaxy & (lightness > REGION_MIN_L)).sum() >= RANKED_PIXELS:
            self.excess_ranks.append(excess_rank_correlation(blue[inside], blue_excess(true_lab, lightness)[inside]))
        true_colour, pred_colour = integrated_colour(true_lab), integrated_colour(pred_lab)
        if true_colour is not None and pred_colour is not None:
            self.true_b.append(true_colour[1])
            self.pred_b.append(pred_colour[1])
        sky = ~ndimage.binary_dilation(signal, iterations=SKY_MARGIN)
        if sky.any():
            self.sky_chroma.append(float(np.hypot(pred_lab[..., 1], pred_lab[..., 2])[sky].mean()))
            self.true_sky_chroma.append(float(np.hypot(true_lab[..., 1], true_lab[..., 2])[sky].mean()))
        stars = point_sources(lightness)
        if stars.any():
            self.star_chroma.append(float(np.hypot(pred_lab[..., 1], pred_lab[..., 2])[stars].mean()))
            self.true_star_chroma.append(float(np.hypot(true_lab[..., 1], true_lab[..., 2])[stars].mean()))

    def summary(self) -> dict[str, float]:
        return {
            "gradient_err": float(np.mean(self.gradient_errors)) if self.gradient_errors else float("nan"),
            **self.regions.summary(),
            "true_regions": self.regions.true_regions,
            "excess_rank": float(np.mean(self.excess_ranks)) if self.excess_ranks else float("nan"),
            "red_blue_auc": red_blue_auc(self.true_b, self.pred_b),
            "sky_chroma": float(np.mean(self.sky_chroma)) if self.sky_chroma else float("nan"),
            "true_sky_chroma": float(np.mean(self.true_sky_chroma)) if self.true_sky_chroma else float("nan"),
            "star_chroma": float(np.mean(self.star_chroma)) if self.star_chroma else float("nan"),
            "true_star_chroma": float(np.mean(self.true_star_chroma)) if self.true_star_chroma else float("nan"),
        }

    def mean_profiles(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.true_profiles:
            empty = np.full(len(RADIAL_EDGES) - 1, np.nan)
            return empty, empty
        return np.nanmean(np.stack(self.true_profiles), axis=0), np.nanmean(np.stack(self.pred_profiles), axis=0)


def excess_rank_correlation(predicted: np.ndarray, true: np.ndarray) -> float:
    """Spearman's rank correlation of the predicted blue excess with the true one over a galaxy's bright
    pixels: does the colour put the bluer-than-around-them places where the truth has them, at any
    threshold? 0 for a colour with no local contrast at all (flat, or grey)."""
    if np.ptp(predicted) < FLAT_EXCESS or np.ptp(true) < FLAT_EXCESS:  # rounding noise is no layout
        return 0.0
    return float(stats.spearmanr(predicted, true).statistic)


def red_threshold(true_b) -> float:
    """The integrated b* that splits a set's red galaxies from its blue ones: Otsu's threshold of the
    truth's integrated b* (nan for fewer than 3 galaxies or a single colour)."""
    values = np.asarray([b for b in true_b if np.isfinite(b)], dtype=np.float64)
    if values.size < 3 or np.ptp(values) == 0:
        return float("nan")
    return float(threshold_otsu(values))


def red_blue_auc(true_b, pred_b) -> float:
    """ROC AUC of the predicted integrated b* separating the truth's red galaxies (above red_threshold)
    from its blue ones (nan when one class is empty)."""
    threshold = red_threshold(true_b)
    if not np.isfinite(threshold):
        return float("nan")
    return roc_auc(list(pred_b), [int(b > threshold) for b in true_b])
