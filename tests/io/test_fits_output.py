"""FITS in, FITS out: the colour planes keep the input's sky coordinates."""

import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from galcolor.app.cli import main
from galcolor.io.fits_output import fits_bytes


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


def _header(cards: dict) -> fits.Header:
    header = fits.Header()
    header.update({"NAXIS": 2, "NAXIS1": 56, "NAXIS2": 40, **cards})
    return header


TAN = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 27.79, "CRVAL2": 0.0167, "CRPIX1": -2035.5, "CRPIX2": -3257.5}


@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")  # the inputs' deprecated forms, read here for the comparison
@pytest.mark.parametrize("cards", [
    {**TAN, "CD1_1": -7.3e-5, "CD1_2": 1e-7, "CD2_1": 0.0, "CD2_2": 7.3e-5, "RADECSYS": "ICRS", "EQUINOX": 2000.0},  # SDSS, DES: a CD matrix
    {**TAN, "CDELT1": 6.9e-5, "CDELT2": 6.9e-5, "PC001001": -1.0, "PC001002": 0.0, "PC002001": 0.0, "PC002002": 1.0},  # Pan-STARRS
    {**TAN, "CD1_1": -7.3e-5, "CD2_2": 7.3e-5, "PV1_1": 1.0, "PV2_1": 1.0, "PV2_4": 2e-3, "PV2_7": 1e-4},  # SCAMP's TPV under TAN
])
def test_the_fits_output_carries_the_inputs_own_wcs_keywords(cards):
    """Not astropy's rewriting of them (CD as PC + CDELT, RADESYS, LONPOLE, MJDREF added): the input's
    cards, and its positions, read as a user would; a PV distortion, which astropy cannot take into a
    cube's celestial axes ("NULL error object in wcslib"), comes with the colour planes as 2-D images."""
    header = _header(cards)
    data, notes = fits_bytes(np.zeros((40, 56, 3), np.uint8), header)
    with fits.open(io.BytesIO(data)) as hdul:
        headers = [hdu.header for hdu in hdul]
        assert [hdu.name for hdu in hdul] == (["PRIMARY", "RED", "GREEN", "BLUE"] if "PV2_4" in cards else ["PRIMARY"])
    y, x = np.mgrid[0:40, 0:56]
    for written in headers:
        assert {key: written[key] for key in cards if key not in ("NAXIS1", "NAXIS2")} == {k: v for k, v in cards.items()}
        wcs_keys = {"WCSAXES", "LONPOLE", "LATPOLE", "MJDREF", "RADESYS", "CDELT1", "PC1_1", "DATEREF", "MJD-OBS"}
        assert not {key for key in written if key in wcs_keys} - set(cards)  # nothing the input did not have
        wcs_out = WCS(written)
        wcs_out = wcs_out.celestial if wcs_out.naxis > 2 else wcs_out
        np.testing.assert_allclose(wcs_out.all_pix2world(x, y, 0), WCS(header).all_pix2world(x, y, 0), rtol=0, atol=1e-9)
    assert ("RADECSYS" in cards or "PC001001" in cards) == any("needed fixing" in note for note in notes)
