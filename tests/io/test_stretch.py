"""The sky of a FITS frame is measured where the frame has data: a mosaic's padding is left out (#30)."""

import numpy as np
import pytest
from astropy.io import fits

from galcolor.io.decode import read_image


def stack(sky: float = 1000.0, shape=(160, 200), seed: int = 0) -> np.ndarray:
    """A galaxy on a sky of `sky` counts with noise, as an unsubtracted stack has."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    rng = np.random.default_rng(seed)
    galaxy = 3000 * np.exp(-np.hypot(x - 170, y - 100) / 6)
    return (sky + galaxy + rng.normal(0, 10, shape)).astype(np.float32)


def lightness(tmp_path, data: np.ndarray, name: str = "f.fits") -> np.ndarray:
    fits.PrimaryHDU(data).writeto(tmp_path / name)
    return read_image(tmp_path / name).rgb[::-1, :, 0]  # back to FITS row order


def sky_pixels(shape) -> np.ndarray:
    y, x = np.mgrid[: shape[0], : shape[1]]
    return (np.hypot(x - 170, y - 100) > 40) & (x >= 0.7 * shape[1])  # covered, away from the galaxy


@pytest.mark.parametrize("fill", [0.0, -999.0])
def test_padding_is_left_out_of_the_sky_and_stays_black(tmp_path, fill):
    """A stack with a sky of 1,000 counts and 70 % of its area padded (SWarp's zeros, or a constant
    a registration step filled in): its covered sky comes out as dark as the unpadded frame's, not
    grey, and the padding is black."""
    data = stack()
    padded = data.copy()
    padded[:, : int(0.7 * data.shape[1])] = fill
    plain, got = lightness(tmp_path, data, "plain.fits"), lightness(tmp_path, padded, "padded.fits")
    sky = sky_pixels(data.shape)
    assert np.median(got[sky]) < 0.02 and np.median(plain[sky]) < 0.02  # before #30: 90/255 with zeros
    assert np.percentile(got[sky], 90) < 0.15
    assert (got[:, : int(0.7 * data.shape[1])] == 0).all()
    assert got[100, 170] == pytest.approx(1.0, abs=0.02)  # the galaxy's core still white


def test_padding_in_a_frame_whose_sky_is_negative_is_black_not_grey(tmp_path):
    data = stack(sky=-50.0)
    data[:40] = 0.0  # zero padding above the sky: it came out grey
    got = lightness(tmp_path, data)
    assert (got[:40] == 0).all()
    assert np.median(got[40:][sky_pixels(data.shape)[40:]]) < 0.02


def test_a_noise_free_model_on_a_zero_background_keeps_zero_as_its_sky(tmp_path):
    """Zeros where the galaxy fades to nothing are its sky, not padding: its outskirts stay visible."""
    y, x = np.mgrid[:120, :120]
    model = 1000 * np.exp(-np.hypot(x - 60, y - 60) / 8)
    model[model < 1e-2] = 0.0
    got = lightness(tmp_path, model.astype(np.float32))
    assert got[60, 60] == pytest.approx(1.0, abs=1e-6)
    assert got[60, 60 + 40] > 0.01  # 5 scale lengths out: above the sky of 0, as before #30


def test_integer_counts_with_many_zeros_in_the_sky_are_not_padding(tmp_path):
    """Low-count data hold zeros all over their sky; scattered, they are data, and the sky is theirs."""
    rng = np.random.default_rng(4)
    y, x = np.mgrid[:100, :100]
    counts = rng.poisson(2.0 + 200 * np.exp(-np.hypot(x - 50, y - 50) / 5)).astype(np.int16)
    got = lightness(tmp_path, counts)
    assert got[50, 50] > 0.9 and np.median(got) < 0.15
