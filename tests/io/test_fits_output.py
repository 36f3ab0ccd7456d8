"""FITS in, FITS out: the colour planes keep the input's sky coordinates."""

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from galcolor.app.cli import main


def _fits_with_wcs(path, shape=(40, 56)):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    data = 100.0 * np.exp(-((y - 20) ** 2 + (x - 28) ** 2) / 60.0) + rng.normal(-2, 1, shape)  # negative sky
    data[3, 4] = np.nan
    data[35, 50] = 5000.0  # a bright star: a large dynamic range
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.1, 2.2]
    wcs.wcs.crpix = [28.0, 20.0]
    wcs.wcs.cdelt = [-0.0001, 0.0001]
    header = wcs.to_header()
    header["OBJECT"] = "test galaxy"
    fits.PrimaryHDU(data.astype(np.float32), header).writeto(path)
    return wcs


def test_fits_output_keeps_the_wcs_and_the_orientation(tiny_model_path, tmp_path):
    source = tmp_path / "galaxy.fits"
    wcs_in = _fits_with_wcs(source)
    out = tmp_path / "out"
    assert main(["colorize", str(source), "-o", str(out), "--model", str(tiny_model_path), "--fits", "-q"]) == 0
    with fits.open(out / "galaxy.fits") as hdul:
        cube, header = hdul[0].data, hdul[0].header
    assert cube.shape == (3, 40, 56) and cube.dtype.kind == "f"
    np.testing.assert_allclose(cube[:, ::-1].transpose(1, 2, 0), np.asarray(Image.open(out / "galaxy.png")) / 255.0, atol=1e-6)
    assert fits.getheader(out / "galaxy.fits")["BITPIX"] == 8  # the 8-bit levels, not a float cube 4x the size (reading .data rescales the header)
    assert header["WCSAXES"] == 3 and header["CTYPE3"] == "RGB"  # WCSAXES counts every axis with WCS keywords
    assert np.isfinite(cube).all() and cube.min() >= 0 and cube.max() <= 1
    wcs_out = WCS(header, naxis=2)
    for pixel in ((0, 0), (10.5, 30.25), (55, 39)):
        assert np.allclose(wcs_out.pixel_to_world_values(*pixel), wcs_in.pixel_to_world_values(*pixel))
    assert header["OBJECT"] == "test galaxy"
    # Same orientation as the input: the brightest pixel of the galaxy is where it was in FITS order.
    brightness = cube.mean(axis=0)
    assert brightness[20, 28] > brightness[5, 5] + 0.2
    assert brightness[35, 50] > 0.9  # the star, still in its FITS row
