"""Real-shaped FITS files, made here, through `galcolor colorize --fits` as a user runs it (#30): the
output's WCS against the input's at every pixel, the sky level of the output, stdout that is JSON."""

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, Sip
from PIL import Image

from galcolor.app.cli import main

SHAPE = (48, 64)  # FITS order: NAXIS2, NAXIS1


def tan_header(cd=((-7.3e-5, 1.2e-6), (1.5e-6, 7.3e-5)), crpix=(30.5, 20.0), sip: bool = False) -> fits.Header:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"] if sip else ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [53.12, -27.8]
    wcs.wcs.crpix = list(crpix)
    wcs.wcs.cd = np.array(cd)
    if sip:  # astrometry.net's second-order solution
        a, b = np.zeros((3, 3)), np.zeros((3, 3))
        a[2, 0], a[1, 1], a[0, 2] = 2e-5, -1e-5, 3e-6
        b[2, 0], b[1, 1], b[0, 2] = -4e-6, 2e-5, 1e-5
        wcs.sip = Sip(a, b, None, None, list(crpix))
    return wcs.to_header(relax=True)


def sky_and_galaxy(sky: float = 0.0, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]
    rng = np.random.default_rng(seed)
    return (sky + 2000 * np.exp(-np.hypot(x - 40, y - 24) / 4) + rng.normal(0, 10, SHAPE)).astype(np.float32)


def corpus(folder):
    """name -> (file, the input's WCS as a reader following the FITS standard takes it)."""
    folder.mkdir()
    made = {}

    padded = sky_and_galaxy(sky=1000.0)  # a stack with a sky of 1,000 counts, 40 % of it SWarp's zeros
    padded[:, :26] = 0.0
    header = tan_header()
    fits.PrimaryHDU(padded, header).writeto(folder / "mosaic.fits")
    made["mosaic"] = WCS(header)

    header = tan_header(sip=True)  # TAN-SIP from astrometry.net
    fits.PrimaryHDU(sky_and_galaxy(), header).writeto(folder / "astrometry.fits")
    made["astrometry"] = WCS(header)

    plain = tan_header(crpix=(-1700.5, 8048.5))  # an HST drizzled stamp: SIP leftovers under 'RA---TAN'
    stamp = plain.copy()
    for key, value in {"A_ORDER": 2, "A_2_0": 3e-6, "A_0_2": 2e-6, "B_ORDER": 2, "B_1_1": 4e-6, "B_0_2": -2e-6}.items():
        stamp[key] = value
    stamp["RADECSYS"] = "ICRS"  # and SDSS's deprecated spelling: astropy warns about both
    fits.PrimaryHDU(sky_and_galaxy(), stamp).writeto(folder / "drizzled.fits")
    made["drizzled"] = WCS(plain)

    sci = sky_and_galaxy(sky=0.3)  # JWST: an empty primary, the image in 'SCI' with a NaN border, PC + CDELT
    sci[:5], sci[:, -7:] = np.nan, np.nan
    jwst = WCS(naxis=2)
    jwst.wcs.ctype, jwst.wcs.crval, jwst.wcs.crpix = ["RA---TAN", "DEC--TAN"], [150.1, 2.2], [32.0, 24.0]
    jwst.wcs.cdelt, jwst.wcs.pc = [-8.7e-6, 8.7e-6], [[0.8, -0.6], [0.6, 0.8]]
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci, jwst.to_header(), name="SCI")]).writeto(folder / "jwst.fits")
    made["jwst"] = jwst

    header = tan_header()
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(sky_and_galaxy(sky=50.0), header)]).writeto(folder / "compressed.fits.fz")
    made["compressed"] = WCS(header)

    cube_header = tan_header()
    cube_header["CTYPE3"], cube_header["CRVAL3"], cube_header["CDELT3"], cube_header["CRPIX3"] = "WAVE", 4.8e-7, 1e-7, 1.0
    cube_header["WCSAXES"] = 3
    fits.PrimaryHDU(np.stack([sky_and_galaxy(seed=k) for k in range(3)]), cube_header).writeto(folder / "cube.fits")
    made["cube"] = WCS(cube_header).celestial
    return made


def worst_offset_arcsec(expected: WCS, written: WCS) -> float:
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]  # every pixel
    ra0, dec0 = expected.all_pix2world(x, y, 0)
    ra1, dec1 = written.all_pix2world(x, y, 0)
    return float(np.hypot((ra1 - ra0) * np.cos(np.radians(dec0)), dec1 - dec0).max() * 3600)


@pytest.fixture(scope="module")
def coloured(tiny_model_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    expected = corpus(root / "in")
    return root, expected


@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")  # the inputs' RADECSYS; the SIP layout's empty primary HDU
def test_fits_corpus_round_trip(coloured, tiny_model_path, capsys):
    root, expected = coloured
    out, report = root / "out", root / "report.json"
    code = main(["colorize", str(root / "in"), "-o", str(out), "--model", str(tiny_model_path), "--fits", "--science-maps",
                 "--json", "-q", "--report", str(report)])
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # astropy's INFO lines about a header printed here before #30
    assert code == 0 and captured.err == ""
    assert {f["status"] for f in result["files"]} == {"coloured"} and len(result["files"]) == len(expected)

    for name, wcs_in in expected.items():
        for written in (out / f"{name}.fits", out / f"{name}.starforming.fits"):
            with fits.open(written) as hdul:
                header = hdul[0].header
                planes = hdul[0].data if hdul[0].data is not None else np.stack([hdul[k].data for k in ("RED", "GREEN", "BLUE")])
                headers = [hdu.header for hdu in hdul]
            for each in headers:  # the primary HDU's, and each colour plane's where they are extensions
                wcs_out = WCS(each)  # astropy refused the SIP output ("SIP distortions only work in 2 dimensions")
                celestial = wcs_out.celestial if wcs_out.naxis > 2 else wcs_out
                assert worst_offset_arcsec(wcs_in, celestial) < 0.01, (name, written.name)
            assert header["CTYPE1"] == wcs_in.wcs.ctype[0]  # never changed
            if written.suffix == ".fits" and "starforming" not in written.name:
                assert planes.shape == (3, *SHAPE)
                np.testing.assert_allclose(planes[:, ::-1].transpose(1, 2, 0), np.asarray(Image.open(out / f"{name}.png")) / 255.0, atol=1e-6)

    drizzled = fits.getheader(out / "drizzled.fits")
    assert drizzled["CTYPE1"] == "RA---TAN" and "A_ORDER" not in drizzled  # no distortion the input did not have
    notes = {f["source"].rsplit("/", 1)[-1]: " ".join(f["notes"]) for f in json.loads(report.read_text())["files"]}
    assert "SIP" in notes["drizzled.fits"] and "RADECSYS" in notes["drizzled.fits"]  # said once, in the file's report entry
    assert notes["mosaic.fits"] == "" and notes["jwst.fits"] == ""

    mosaic = np.asarray(Image.open(out / "mosaic.png").convert("L"), np.float32)[::-1]  # FITS row order
    assert (mosaic[:, :26] < 8).all()  # the padding black
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]
    sky = (x >= 26) & (np.hypot(x - 40, y - 24) > 16)
    assert np.median(mosaic[sky]) < 30  # the covered sky dark, not grey (90 of 255 before #30)
    jwst = np.asarray(Image.open(out / "jwst.png").convert("L"))[::-1]
    assert (jwst[:5] < 8).all() and jwst[24, 40] > 200  # the NaN border black, the galaxy bright


def test_a_note_about_a_header_is_one_line_on_stderr(coloured, tiny_model_path, capsys):
    root, _ = coloured
    code = main(["colorize", str(root / "in" / "drizzled.fits"), "-o", str(root / "plain"), "--model", str(tiny_model_path), "--fits"])
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("galcolor: note:")]
    assert code == 0 and len(notes) == 2 and all("drizzled.fits" in line for line in notes)
    assert "INFO" not in err and "WARNING" not in err
