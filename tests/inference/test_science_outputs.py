"""What the colour says, as a user gets it: --science rows, star-forming maps, FITS masks with WCS, the API."""

import csv

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from galcolor.app.cli import main
from galcolor.inference.science import ScienceCalibration, read_science
from galcolor.training.science_fit import cross_fit_brier, logistic_fit


@pytest.fixture(scope="module")
def real_jpegs(few_galaxies):
    return sorted((few_galaxies / "spirals").glob("*.jpg"))[:2]


def _disk(size=96, b=8.0):
    """A galaxy in Lab: an exponential disk of uniform colour on black sky."""
    y, x = np.mgrid[0:size, 0:size].astype(float)
    r = np.hypot(y - size / 2, x - size / 2)
    lab = np.zeros((size, size, 3))
    lab[..., 0] = 85.0 * np.exp(-r / 14.0)
    lab[..., 2] = np.where(lab[..., 0] > 15, b, 0.0)
    return lab


def test_a_planted_blue_clump_is_found_and_nothing_where_there_is_none():
    plain = _disk()
    reading, labels = read_science(plain, None)
    assert reading.starforming_regions == 0 and not labels.any()
    clumpy = plain.copy()
    clumpy[58:62, 38:42, 2] = -12.0  # 16 px, 20 b* bluer than the disk around it
    reading, labels = read_science(clumpy, None)
    assert reading.starforming_regions == 1
    found = labels > 0
    assert found[58:62, 38:42].all() and found.sum() == reading.starforming_area_px
    near = np.zeros_like(found)
    near[56:64, 36:44] = True  # a denoising pixel of smoothing around it, no more
    assert not (found & ~near).any()
    assert reading.integrated_b < read_science(plain, None)[0].integrated_b  # and the galaxy reads bluer for it


def test_red_probability_follows_the_calibration_and_fades_with_the_caution():
    calibration = ScienceCalibration({"sdss": 10.0}, {"sdss": (0.5, -5.0)})  # P(red) = 1/2 at b* 10
    red, _ = read_science(_disk(b=18.0), calibration, "sdss")
    blue, _ = read_science(_disk(b=2.0), calibration, "sdss")
    assert red.colour_class == "red" and red.red_probability > 0.95
    assert blue.colour_class == "blue" and blue.red_probability < 0.05
    # Delivered at half strength, read as the model's own colour: the same call.
    half = _disk(b=9.0)
    assert read_science(half, calibration, "sdss", colour_scale=0.5)[0].red_probability == pytest.approx(red.red_probability, abs=1e-3)
    faded, _ = read_science(_disk(b=18.0), calibration, "sdss", colour_kept=0.2)
    assert faded.red_probability == pytest.approx(0.5 + 0.2 * (red.red_probability - 0.5), abs=1e-3)
    assert read_science(_disk(b=18.0), calibration, "jwst")[0].red_probability is None  # a survey it was not calibrated on


def test_the_logistic_fit_separates_red_from_blue_and_beats_the_base_rate():
    rng = np.random.default_rng(0)
    b = np.concatenate([rng.normal(4, 3, 200), rng.normal(14, 3, 200)])
    red = (np.arange(400) >= 200).astype(float)
    slope, intercept = logistic_fit(b, red)
    assert slope > 0 and -intercept / slope == pytest.approx(9.0, abs=1.0)  # P = 1/2 between the two
    assert cross_fit_brier(b, red) < 0.5 * np.mean((red.mean() - red) ** 2)


def test_science_writes_one_row_per_input_and_names_a_bad_file(tiny_model_path, real_jpegs, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    out, table = tmp_path / "out", tmp_path / "science.csv"
    code = main(["colorize", *map(str, real_jpegs[:2]), str(bad), "-o", str(out), "--model", str(tiny_model_path),
                 "--science", str(table), "--science-maps", "-q"])
    assert code == 1  # one input failed
    rows = list(csv.DictReader(table.open()))
    assert [row["source"] for row in rows] == [*map(str, real_jpegs[:2]), str(bad)]
    good, failed = rows[:2], rows[2]
    assert failed["status"] == "failed" and "broken.jpg" in failed["message"] and failed["integrated_b"] == ""
    for row, source in zip(good, real_jpegs[:2]):
        assert row["status"] == "coloured" and row["integrated_b"] != "" and int(row["starforming_regions"]) >= 0
        mask = np.asarray(Image.open(out / f"{source.stem}.starforming.png"))
        assert mask.shape == np.asarray(Image.open(out / f"{source.stem}.png")).shape[:2]
        assert set(np.unique(mask)) <= {0, 255}
        assert int((mask > 0).sum()) == int(row["starforming_area_px"])


def test_a_fits_input_gets_a_region_mask_with_its_wcs(tiny_model_path, tmp_path):
    y, x = np.mgrid[0:64, 0:64]
    data = 100.0 * np.exp(-((y - 30) ** 2 + (x - 34) ** 2) / 120.0) + np.random.default_rng(0).normal(0, 1, (64, 64))
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval, wcs.wcs.crpix, wcs.wcs.cdelt = [150.1, 2.2], [34.0, 30.0], [-0.0001, 0.0001]
    source = tmp_path / "field.fits"
    fits.PrimaryHDU(data.astype(np.float32), wcs.to_header()).writeto(source)
    out = tmp_path / "out"
    assert main(["colorize", str(source), "-o", str(out), "--model", str(tiny_model_path), "--science-maps", "-q"]) == 0
    with fits.open(out / "field.starforming.fits") as hdul:
        labels, header = hdul[0].data, hdul[0].header
    assert labels.shape == (64, 64) and labels.dtype.kind == "i"
    np.testing.assert_array_equal(labels[::-1] > 0, np.asarray(Image.open(out / "field.starforming.png")) > 0)  # FITS row order
    for pixel in ((0, 0), (12.5, 40.0)):
        assert np.allclose(WCS(header).pixel_to_world_values(*pixel), wcs.pixel_to_world_values(*pixel))


def test_the_api_returns_the_reading_and_the_regions(tiny_model_path, real_jpegs):
    import galcolor

    rgb = np.asarray(Image.open(real_jpegs[0]).convert("RGB"))
    result = galcolor.colorize(rgb, model=tiny_model_path, science=True)
    assert result.rgb.shape == rgb.shape and result.starforming.shape == rgb.shape[:2]
    assert result.science["starforming_regions"] == int(result.starforming.max())
    np.testing.assert_array_equal(result.rgb, galcolor.colorize(rgb, model=tiny_model_path))


def test_a_row_too_large_to_read_says_why(tmp_path):
    from galcolor.inference.pipeline import FileOutcome
    from galcolor.inference.science_outputs import science_table

    outcome = FileOutcome("big.png", "out/big.png", "coloured", "as sdss (90%)", None, {"unread": "science is read on images up to 1024 px a side"})
    row, = csv.DictReader(science_table([outcome]).splitlines())
    assert row["status"] == "coloured" and row["integrated_b"] == ""
    assert row["message"] == "as sdss (90%); science is read on images up to 1024 px a side"
