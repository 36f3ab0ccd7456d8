"""The galaxies in a frame: where each is and how large, so that a frame can be judged by its main galaxy
whatever its framing (a training crop, a whole survey frame, a zoom, a field of several galaxies).

Sources are found with photutils' image segmentation: the sky's level and noise are measured from the
frame itself (astropy's sigma-clipped statistics, measured again with the sources masked), the frame is smoothed with a Gaussian of
the PSF's width, pixels THRESHOLD_SIGMA times the sky's noise above the sky that touch at least
MIN_PIXELS others make a source, and touching sources are split (deblend_sources). photutils'
SourceCatalog then measures each one: its windowed centroid (SourceExtractor's XWIN: a Gaussian-weighted
centroid, steadier than the segment's flux-weighted one when the frame cuts a galaxy), its half-light radius (flux_radius
0.5) and the radius holding 90 % of its light.

A galaxy is told from a point source (a foreground star, or a galaxy too small to resolve) by its
size against the PSF: a point source's half-light radius is the PSF's own (FWHM / 2 for a Gaussian),
however bright, while a resolved galaxy's is larger. EXTENDED_RATIO sets how much larger (see
`extended`). The PSF's FWHM in pixels is the caller's to give where it is known (a survey's seeing
over its pixel scale, times any zoom); by default SDSS's, in SDSS pixels.

Checked by eye on real frames (sdss-gz2-424, hubble-goods; docs/model-card.md, "Framing"): the rule
tells the faint unresolved sources of a frame from its galaxies, but a bright star's display-stretched
halo (a saturated core, diffraction spikes) is wider than the PSF and comes out extended: in a JPEG
the light profile that would tell them apart is stretched away. `main_galaxy` therefore picks among
the bright sources by position, not by kind alone. Clumpy and spiral galaxies at Hubble's resolution
are split into several sources (their half-light radius then comes out too small).

Measured on the image's brightness: CIELAB L turned back into relative luminance Y, which undoes L's
cube root (a JPEG's own display stretch, e.g. SDSS's asinh, stays). For a FITS input with a celestial
WCS, `pixel_scale` gives the frame's pixel scale in arcseconds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

THRESHOLD_SIGMA = 5.0  # a source's pixels lie this many sky sigmas above the sky, in the smoothed frame (JPEG noise is correlated: 3 finds its blotches)
MIN_PIXELS = 10  # connected pixels a source needs
DEBLEND_CONTRAST = 0.05  # share of a blend's flux a component needs to be split off (photutils' default 0.001 cuts spiral arms off their galaxy)
DEFAULT_PSF_FWHM = 3.5  # px: SDSS's 1.4" median seeing at 0.396" pixels, where the caller gives none
EXTENDED_RATIO = 1.5  # a galaxy's half-light radius exceeds the PSF's by this factor; a point source's does not
SKY_MASK_SIGMA = 2.0  # pixels this far above the first estimate of the sky are left out of the second
SKY_MASK_GROWTH = 5  # px: and the pixels this close to them (a galaxy's faint outskirts)
MIN_SKY_PIXELS = 100  # a frame with fewer pixels left keeps its first estimate
MAIN_SHARE = 0.1  # the main galaxy holds at least this share of the flux of the frame's brightest galaxy


@dataclass(frozen=True)
class Source:
    """One detected source, in pixels of the frame (x: column, y: row; 0 at the first pixel's centre)."""

    x: float
    y: float
    half_light_radius: float  # px: the radius of the circle holding half its flux above the sky
    radius90: float  # px: the circle holding 90 % of it
    flux: float  # summed brightness above the sky over its segment
    area: int  # px in its segment
    extended: bool  # a galaxy, not a point source

    def distance(self, x: float, y: float) -> float:
        return float(np.hypot(self.x - x, self.y - y))


@dataclass(frozen=True)
class FrameSources:
    """What a frame holds: its sources, brightest first, the PSF FWHM used to tell galaxies from points,
    and the sky's level and noise."""

    sources: tuple[Source, ...]
    psf_fwhm: float
    sky: float
    sky_sigma: float
    shape: tuple[int, int]
    pixel_scale: float | None = None  # arcsec per pixel, from a FITS input's WCS; None where unknown

    @property
    def galaxies(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.extended)

    def main_galaxy(self) -> Source | None:
        """The galaxy nearest the frame's centre among those with MAIN_SHARE or more of the brightest one's flux
        (faint blobs near the centre are not the frame's subject); the source nearest it where none is
        extended; None on empty sky."""
        candidates = self.galaxies or self.sources
        if not candidates:
            return None
        brightest = max(s.flux for s in candidates)
        chosen = [s for s in candidates if s.flux >= MAIN_SHARE * brightest]
        height, width = self.shape
        return min(chosen, key=lambda s: s.distance((width - 1) / 2, (height - 1) / 2))


def luminance(lightness: np.ndarray) -> np.ndarray:
    """CIELAB L in [0, 100] -> relative luminance Y in [0, 1] (the inverse of L's cube root; linear below L 8)."""
    lightness = np.asarray(lightness, dtype=np.float64)
    cube = ((lightness + 16.0) / 116.0) ** 3
    return np.where(lightness > 8.0, cube, lightness / 903.3)


def find_sources(lightness: np.ndarray, psf_fwhm: float | None = None, threshold_sigma: float | None = None,
                 header=None) -> FrameSources:
    """(H, W) CIELAB L of a frame -> its sources (FrameSources). `psf_fwhm` in px where known (a survey's
    seeing over its pixel scale, times any zoom); DEFAULT_PSF_FWHM (SDSS's) otherwise. `header`: a FITS
    input's, whose WCS gives the pixel scale (FrameSources.pixel_scale)."""
    from astropy.convolution import convolve
    from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources, make_2dgaussian_kernel

    brightness = luminance(lightness)
    height, width = brightness.shape
    background, sigma = sky_of(brightness)
    data = brightness - background
    smoothing = psf_fwhm or DEFAULT_PSF_FWHM
    kernel = make_2dgaussian_kernel(smoothing, size=2 * int(np.ceil(smoothing)) + 1)
    convolved = convolve(data, kernel)
    scale = pixel_scale(header)
    empty = FrameSources((), float(psf_fwhm or DEFAULT_PSF_FWHM), background, sigma, (height, width), scale)
    if sigma <= 0:
        sigma = float(np.finfo(np.float32).eps)  # a noiseless sky: anything above it is a source
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils warns of sources it cannot deblend, and of none at all
        segments = detect_sources(convolved, (threshold_sigma or THRESHOLD_SIGMA) * sigma, n_pixels=MIN_PIXELS)
        if segments is None:
            return empty
        segments = deblend_sources(convolved, segments, n_pixels=MIN_PIXELS, contrast=DEBLEND_CONTRAST, progress_bar=False)
        catalog = SourceCatalog(data, segments, convolved_data=convolved)
        half = np.atleast_1d(catalog.flux_radius(0.5).value)
        ninety = np.atleast_1d(catalog.flux_radius(0.9).value)
        x, y = np.atleast_1d(catalog.x_centroid_win), np.atleast_1d(catalog.y_centroid_win)
    flux, area = np.atleast_1d(catalog.segment_flux), np.atleast_1d(catalog.area.value)
    measured = np.isfinite(half) & np.isfinite(x) & np.isfinite(y) & (half > 0)
    fwhm = float(psf_fwhm or DEFAULT_PSF_FWHM)
    sources = [Source(float(x[i]), float(y[i]), float(half[i]), float(ninety[i]), float(flux[i]), int(area[i]),
                      extended(float(half[i]), fwhm))
               for i in np.flatnonzero(measured)]
    sources.sort(key=lambda s: -s.flux)
    return FrameSources(tuple(sources), fwhm, background, sigma, (height, width), scale)


def extended(half_light_radius: float, psf_fwhm: float) -> bool:
    """A galaxy rather than a point source: its half-light radius over EXTENDED_RATIO times the PSF's (FWHM / 2)."""
    return half_light_radius > EXTENDED_RATIO * psf_fwhm / 2.0


def sky_of(brightness: np.ndarray) -> tuple[float, float]:
    """The sky's level and noise (one sigma) of a frame: astropy's sigma-clipped median and standard deviation,
    measured again with the sources (photutils' segmentation of the first estimate, each grown by SKY_MASK_GROWTH
    px) masked, so that a galaxy filling most of the frame does not lift its sky. One level for the frame: a
    survey's JPEG is stretched to a flat sky; a FITS frame is cut small round its target."""
    from astropy.stats import sigma_clipped_stats
    from photutils.segmentation import detect_sources
    from photutils.utils import circular_footprint

    _, level, sigma = sigma_clipped_stats(brightness, sigma=3.0)
    if sigma > 0:
        segments = detect_sources(brightness - level, SKY_MASK_SIGMA * sigma, n_pixels=MIN_PIXELS)
        if segments is not None:
            mask = segments.make_source_mask(footprint=circular_footprint(SKY_MASK_GROWTH))
            if (~mask).sum() >= MIN_SKY_PIXELS:
                _, level, sigma = sigma_clipped_stats(brightness, mask=mask, sigma=3.0)
    return float(level), float(sigma)


def pixel_scale(header) -> float | None:
    """A FITS header's pixel scale in arcseconds (the geometric mean of its two axes', astropy's
    proj_plane_pixel_scales); None where it holds no celestial WCS."""
    if header is None:
        return None
    from astropy.wcs import WCS
    from astropy.wcs.utils import proj_plane_pixel_scales

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wcs = WCS(header).celestial
        except Exception:  # a malformed WCS is no WCS
            return None
    if wcs.naxis != 2 or not wcs.has_celestial:
        return None
    scales = proj_plane_pixel_scales(wcs) * 3600.0  # degrees -> arcseconds (celestial axes are in degrees)
    return float(np.sqrt(scales[0] * scales[1]))
