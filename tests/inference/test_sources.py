"""Finding the galaxies in a frame (inference.sources): nothing on empty sky, a galaxy told from a star,
a real held-out galaxy found at the same place and at a size that follows the zoom, whatever its framing,
and a FITS frame's pixel scale read from its WCS."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SHARED_DATA
from galcolor.color.lab import rgb_to_lab
from galcolor.evaluation.framing import enlarged, offcentre, reduced
from galcolor.inference.sources import DEFAULT_PSF_FWHM, find_sources, luminance, pixel_scale

SKY_Y, SKY_NOISE = 0.003, 0.0008  # an SDSS JPEG's sky in relative luminance: its level and noise


def lightness_of_luminance(y: np.ndarray) -> np.ndarray:
    """Relative luminance -> CIELAB L, the inverse of sources.luminance."""
    y = np.clip(y, 0.0, 1.0)
    return np.where(y > 0.008856, 116.0 * np.cbrt(y) - 16.0, 903.3 * y)


def sky(shape=(192, 192), seed=0) -> np.ndarray:
    return SKY_Y + np.random.default_rng(seed).normal(0.0, SKY_NOISE, shape)


def lightness_of(rgb8: np.ndarray) -> np.ndarray:
    rgb = torch.from_numpy(rgb8.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    return rgb_to_lab(rgb)[0, 0].numpy()


def test_luminance_inverts_lightness():
    y = np.linspace(0.0, 1.0, 101)
    assert np.allclose(luminance(lightness_of_luminance(y)), y, atol=1e-6)


@pytest.mark.parametrize("frame", ["noise", "black"])
def test_empty_sky_holds_no_source(frame):
    y = sky() if frame == "noise" else np.zeros((128, 128))
    found = find_sources(lightness_of_luminance(y))
    assert found.sources == ()
    assert found.main_galaxy() is None


def test_a_galaxy_is_told_from_a_star_beside_it():
    rows, columns = np.mgrid[0:192, 0:192].astype(float)
    galaxy_radius = np.hypot((columns - 80.0) / 1.0, (rows - 100.0) / 0.7)  # an inclined exponential disk, scale 8 px
    y = sky() + 0.25 * np.exp(-galaxy_radius / 8.0)
    sigma = DEFAULT_PSF_FWHM / 2.3548
    y += 0.6 * np.exp(-((columns - 120.0) ** 2 + (rows - 96.0) ** 2) / (2 * sigma**2))  # a star, brighter and nearer the centre
    found = find_sources(lightness_of_luminance(y))
    assert len(found.sources) == 2
    galaxy = min(found.sources, key=lambda s: s.distance(80, 100))
    star = min(found.sources, key=lambda s: s.distance(120, 96))
    assert galaxy.extended and not star.extended
    assert galaxy.distance(80, 100) < 2 and star.distance(120, 96) < 1
    assert galaxy.half_light_radius > 3 * star.half_light_radius
    assert found.main_galaxy() == galaxy  # the star is nearer the centre, but it is no galaxy


DEMO = resources.files("galcolor") / "demo_galaxies" / "sdss-214718.jpg"  # a held-out SDSS spiral, the central 256 of its frame
FRAME_424 = SHARED_DATA / "sdss-gz2-424" / "spirals" / "214718.jpg"


def main_galaxy(rgb8: np.ndarray, zoom: float = 1.0):
    found = find_sources(lightness_of(rgb8), psf_fwhm=DEFAULT_PSF_FWHM * zoom)
    galaxy = found.main_galaxy()
    assert galaxy is not None and galaxy.extended
    return galaxy


def test_a_real_galaxy_is_found_at_its_place_and_size_in_every_framing():
    crop = np.asarray(Image.open(DEMO).convert("RGB"))
    side = crop.shape[0]
    galaxy = main_galaxy(crop)
    # Galaxy Zoo's 424 x 424 frames are centred on their galaxy (pixel 211.5); the crop starts at 80, 80 (a JPEG block boundary).
    assert galaxy.distance(211.5 - 80, 211.5 - 80) < 3
    big, small, aside = main_galaxy(enlarged(crop), zoom=2.0), main_galaxy(reduced(crop), zoom=0.5), main_galaxy(offcentre(crop))
    # Where the crop's galaxy lands in each framing: enlarged, the central half at 2x; reduced, the whole at 0.5x;
    # off-centre, the top-left three quarters, unmoved (pixel centres at integer coordinates).
    assert big.distance((galaxy.x - side / 4 + 0.5) * 2 - 0.5, (galaxy.y - side / 4 + 0.5) * 2 - 0.5) < 4
    assert small.distance((galaxy.x + 0.5) / 2 - 0.5, (galaxy.y + 0.5) / 2 - 0.5) < 2
    assert aside.distance(galaxy.x, galaxy.y) < 2
    middle = main_galaxy(crop[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4])  # what the enlarged frame shows, at 1x
    assert big.half_light_radius / middle.half_light_radius == pytest.approx(2.0, rel=0.1)
    assert small.half_light_radius / galaxy.half_light_radius == pytest.approx(0.5, rel=0.2)
    assert aside.half_light_radius == pytest.approx(galaxy.half_light_radius, rel=0.1)


def test_a_real_galaxy_is_found_in_its_whole_survey_frame():
    """The published 424 x 424 frame holds more sources round it; the galaxy is still the main one, unmoved (offset 80, 80)."""
    if not FRAME_424.is_file():
        pytest.skip(f"the 424 x 424 SDSS frames are not at {FRAME_424.parent.parent} (../shared/data beside the project)")
    crop = main_galaxy(np.asarray(Image.open(DEMO).convert("RGB")))
    frame = main_galaxy(np.asarray(Image.open(FRAME_424).convert("RGB")))
    assert frame.distance(crop.x + 80, crop.y + 80) < 3
    assert frame.half_light_radius == pytest.approx(crop.half_light_radius, rel=0.15)


def test_a_fits_frame_gives_its_pixel_scale_from_its_wcs(tmp_path: Path):
    from astropy.io import fits
    from astropy.wcs import WCS

    from galcolor.io.decode import read_image

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [32.0, 32.0]
    wcs.wcs.cdelt = [-0.396 / 3600, 0.396 / 3600]  # SDSS's pixels
    fits.PrimaryHDU(np.random.default_rng(1).normal(100.0, 5.0, (64, 64)).astype(np.float32), header=wcs.to_header()).writeto(tmp_path / "wcs.fits")
    fits.PrimaryHDU(np.zeros((64, 64), dtype=np.float32)).writeto(tmp_path / "plain.fits")
    decoded = read_image(tmp_path / "wcs.fits")
    assert pixel_scale(decoded.fits_header) == pytest.approx(0.396, rel=1e-6)
    assert find_sources(decoded.pixels, header=decoded.fits_header).pixel_scale == pytest.approx(0.396, rel=1e-6)
    assert pixel_scale(read_image(tmp_path / "plain.fits").fits_header) is None
    assert pixel_scale(None) is None
