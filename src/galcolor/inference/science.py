"""What a coloured galaxy image says, read off its Lab: the galaxy's integrated colour, whether it is
red or blue, its bulge-minus-disk colour gradient, and candidate star-forming regions (compact
regions bluer than the galaxy around them).

The same functions read the truth in `galcolor evaluate`, so a prediction and its truth are
measured alike. Geometry (the galaxy's ellipse) always comes from lightness, which prediction and
truth share. Region sizes and smoothing scales are in pixels, chosen on SDSS cutouts at 0.4″ a
pixel: on images of another scale a region's size in pixels, and so what counts as compact, shifts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from ..models.galaxy_colour import SIGNAL_L

# Annulus edges in units of the flux-weighted second-moment radius of the galaxy.
RADIAL_EDGES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
INNER, OUTER = 0, 2  # the gradient is mean b* in annulus INNER minus annulus OUTER

SURROUNDINGS_SIGMA = 6.0  # px: the galaxy "around" a region is its L-weighted b* smoothed at this scale
DENOISE_SIGMA = 1.0  # px: a region's own b*, smoothed this little so that single noisy pixels do not count
REGION_PIXELS = (4, 400)  # a star-forming region is compact: between these many pixels
REGION_MIN_L = 20.0  # and bright enough that its colour means something
TRUE_EXCESS = 6.0  # in a true colour image: b* at least this far below its surroundings
DEFAULT_PREDICTED_EXCESS = 3.0  # a regression's colour is damped; `galcolor fit-science` chooses each model's own


@dataclass(frozen=True)
class Ellipse:
    centre_y: float
    centre_x: float
    inverse_covariance: np.ndarray  # (2, 2); radius^2 = d^T C^-1 d

    def radius(self, shape: tuple[int, int]) -> np.ndarray:
        y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
        d = np.stack([y - self.centre_y, x - self.centre_x], axis=-1).astype(np.float64)
        return np.sqrt(np.einsum("...i,ij,...j->...", d, self.inverse_covariance, d))


def galaxy_mask(lightness: np.ndarray) -> np.ndarray | None:
    """(H, W) mask of the galaxy: the connected signal (L > SIGNAL_L) at the image centre, or the
    brightest such component when the centre is sky; None when there is no signal."""
    labels, count = ndimage.label(lightness > SIGNAL_L)
    if count == 0:
        return None
    centre_label = labels[lightness.shape[0] // 2, lightness.shape[1] // 2]
    if centre_label == 0:
        sums = ndimage.sum(lightness, labels, index=np.arange(1, count + 1))
        centre_label = int(np.argmax(sums)) + 1
    return labels == centre_label


def galaxy_ellipse(lightness: np.ndarray) -> Ellipse | None:
    """Flux-weighted centroid and second moments of the galaxy's pixels (galaxy_mask), None when there is no signal."""
    galaxy = galaxy_mask(lightness)
    if galaxy is None:
        return None
    ys, xs = np.nonzero(galaxy)
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


def colour_gradient(lab: np.ndarray, lightness: np.ndarray | None = None) -> float:
    """Inner-minus-outer flux-weighted b* (bulge against disk; positive: a redder centre), geometry
    from `lightness` (default the image's own); nan where either annulus is empty."""
    lightness = lab[..., 0] if lightness is None else lightness
    ellipse = galaxy_ellipse(lightness)
    if ellipse is None:
        return math.nan
    profile = radial_profile(lab, ellipse, lightness > SIGNAL_L)
    return float(profile[INNER] - profile[OUTER])


def integrated_colour(lab: np.ndarray) -> tuple[float, float] | None:
    """The flux-weighted mean (a*, b*) over signal pixels (L > SIGNAL_L), None without signal."""
    lightness = lab[..., 0]
    weight = np.where(lightness > SIGNAL_L, lightness, 0.0).astype(np.float64)
    total = weight.sum()
    if total <= 0:
        return None
    return float((weight * lab[..., 1]).sum() / total), float((weight * lab[..., 2]).sum() / total)


def blue_excess(lab: np.ndarray, lightness: np.ndarray | None = None) -> np.ndarray:
    """(H, W): how much bluer (lower b*) each pixel is than the galaxy around it, both L-weighted over
    signal pixels; `lightness` (default the image's own) sets the weights."""
    lightness = (lab[..., 0] if lightness is None else lightness).astype(np.float64)
    weight = np.where(lightness > SIGNAL_L, lightness, 0.0)
    b_weighted = weight * lab[..., 2]

    def smoothed(sigma: float) -> np.ndarray:
        return ndimage.gaussian_filter(b_weighted, sigma) / np.maximum(ndimage.gaussian_filter(weight, sigma), 1e-6)

    return smoothed(SURROUNDINGS_SIGMA) - smoothed(DENOISE_SIGMA)


def starforming_regions(lab: np.ndarray, excess: float, lightness: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Candidate star-forming regions of the galaxy (galaxy_mask: not its neighbours, nor the halo of a
    star beside it): connected, compact (REGION_PIXELS), bright (L > REGION_MIN_L) regions at least
    `excess` b* bluer than their surroundings. (labels (H, W) int32, 0 outside any region and 1..count
    inside, count)."""
    lightness = lab[..., 0] if lightness is None else lightness
    return regions_of(blue_excess(lab, lightness), lightness, excess, galaxy_mask(lightness))


def regions_of(blue: np.ndarray, lightness: np.ndarray, excess: float, galaxy: np.ndarray | None) -> tuple[np.ndarray, int]:
    """starforming_regions from a blue_excess map and galaxy mask already made (several thresholds share them)."""
    if galaxy is None:
        return np.zeros(lightness.shape, dtype=np.int32), 0
    labels, count = ndimage.label(galaxy & (lightness > REGION_MIN_L) & (blue >= excess))
    if count == 0:
        return labels.astype(np.int32), 0
    sizes = ndimage.sum(np.ones_like(labels), labels, index=np.arange(1, count + 1))
    keep = (sizes >= REGION_PIXELS[0]) & (sizes <= REGION_PIXELS[1])
    renumbered = np.zeros(count + 1, dtype=np.int32)
    renumbered[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    return renumbered[labels], int(keep.sum())


@dataclass(frozen=True)
class ScienceCalibration:
    """Each model's own reading of its colour (checkpoint metadata `science`, `galcolor fit-science`):
    per survey, the true integrated b* that splits red from blue galaxies and a logistic of the model's
    integrated b* for P(red); and the blue excess at which its colour marks a star-forming region."""

    red_threshold: dict[str, float]
    red_logistic: dict[str, tuple[float, float]]  # survey -> (slope, intercept) of P(red) on predicted b*
    starforming_excess: float = DEFAULT_PREDICTED_EXCESS

    @classmethod
    def from_metadata(cls, metadata: dict | None) -> "ScienceCalibration | None":
        entry = (metadata or {}).get("science")
        if not entry:
            return None
        return cls({k: float(v) for k, v in entry["red_threshold"].items()},
                   {k: (float(v[0]), float(v[1])) for k, v in entry["red_logistic"].items()},
                   float(entry.get("starforming_excess", DEFAULT_PREDICTED_EXCESS)))

    def as_metadata(self) -> dict:
        return {"red_threshold": self.red_threshold, "red_logistic": {k: list(v) for k, v in self.red_logistic.items()},
                "starforming_excess": self.starforming_excess}

    def red_probability(self, survey: str | None, b: float) -> float | None:
        if survey is None and len(self.red_logistic) == 1:  # a model of no named surveys, calibrated on one folder
            survey = next(iter(self.red_logistic))
        if survey not in self.red_logistic:
            return None
        slope, intercept = self.red_logistic[survey]
        return float(1.0 / (1.0 + math.exp(-(slope * b + intercept))))


@dataclass(frozen=True)
class ScienceReading:
    """One image's science row (`--science`); None where it cannot be read (no signal, no calibration)."""

    integrated_a: float | None
    integrated_b: float | None
    red_probability: float | None
    colour_class: str | None  # "red" or "blue" (red_probability >= 0.5)
    colour_gradient_b: float | None
    starforming_regions: int
    starforming_area_px: int
    starforming_area_fraction: float | None  # of the galaxy's signal pixels

    def as_dict(self) -> dict:
        return asdict(self)


def read_science(lab: np.ndarray, calibration: ScienceCalibration | None, survey: str | None = None,
                 colour_kept: float = 1.0, colour_scale: float = 1.0) -> tuple[ScienceReading, np.ndarray]:
    """The reading of one coloured (H, W, 3) Lab image and its star-forming region labels.

    `colour_scale` is how much the delivered colour was scaled from the model's own (its saturation times
    the caution's share kept): the red/blue call is made on the model's own integrated colour. An image the
    caution faded is one whose colour the model does not know, so its P(red) fades towards 0.5 with it."""
    colour = integrated_colour(lab)
    excess = calibration.starforming_excess if calibration is not None else DEFAULT_PREDICTED_EXCESS
    labels, count = starforming_regions(lab, excess * colour_scale)
    area = int((labels > 0).sum())
    signal = int((lab[..., 0] > SIGNAL_L).sum())
    probability = None
    if colour is not None and calibration is not None and colour_scale > 0.05:
        own = calibration.red_probability(survey, colour[1] / colour_scale)
        probability = None if own is None else 0.5 + colour_kept * (own - 0.5)
    gradient = colour_gradient(lab)
    reading = ScienceReading(
        integrated_a=None if colour is None else round(colour[0], 3),
        integrated_b=None if colour is None else round(colour[1], 3),
        red_probability=None if probability is None else round(probability, 4),
        colour_class=None if probability is None else ("red" if probability >= 0.5 else "blue"),
        colour_gradient_b=None if not math.isfinite(gradient) else round(gradient, 3),
        starforming_regions=count,
        starforming_area_px=area,
        starforming_area_fraction=round(area / signal, 5) if signal else None,
    )
    return reading, labels
