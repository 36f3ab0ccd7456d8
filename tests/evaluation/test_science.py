import numpy as np
import pytest

from galcolor.evaluation.science import RADIAL_EDGES, ScienceAccumulator, blue_knots, galaxy_ellipse, radial_profile


def _galaxy(size=96, b_centre=20.0, b_edge=-10.0, axis_ratio=0.5):
    """An elliptical galaxy whose b* falls linearly with elliptical radius: red bulge, blue disk."""
    y, x = np.mgrid[0:size, 0:size].astype(float)
    dy, dx = (y - size / 2) / axis_ratio, x - size / 2
    r = np.hypot(dy, dx) / (size / 4)
    lab = np.zeros((size, size, 3))
    lab[..., 0] = np.where(r < 1.6, 60.0, 0.0)
    lab[..., 2] = np.where(r < 1.6, b_centre + (b_edge - b_centre) * np.clip(r / 1.6, 0, 1), 0.0)
    return lab


def test_ellipse_finds_the_centre_and_elongation():
    lab = _galaxy(axis_ratio=0.5)
    ellipse = galaxy_ellipse(lab[..., 0])
    assert ellipse.centre_y == pytest.approx(48, abs=0.6) and ellipse.centre_x == pytest.approx(48, abs=0.6)
    cov = np.linalg.inv(ellipse.inverse_covariance)
    assert cov[1, 1] / cov[0, 0] == pytest.approx(4.0, rel=0.15)  # x extent twice y: variance ratio 4


def test_profile_of_a_red_bulge_blue_disk_galaxy_falls_outwards():
    lab = _galaxy()
    ellipse = galaxy_ellipse(lab[..., 0])
    profile = radial_profile(lab, ellipse, lab[..., 0] > 15)
    finite = profile[np.isfinite(profile)]
    assert len(finite) >= 3
    assert np.all(np.diff(finite) < 0), profile
    assert len(profile) == len(RADIAL_EDGES) - 1


def test_gradient_error_is_zero_for_the_truth_and_the_known_offset_for_a_flat_prediction():
    truth = _galaxy()
    perfect, flat = ScienceAccumulator(), ScienceAccumulator()
    perfect.add(truth, truth.copy())
    prediction = truth.copy()
    prediction[..., 2] = np.where(truth[..., 0] > 15, 5.0, 0.0)  # no gradient at all
    flat.add(truth, prediction)
    ellipse = galaxy_ellipse(truth[..., 0])
    profile = radial_profile(truth, ellipse, truth[..., 0] > 15)
    assert perfect.summary()["gradient_err"] == pytest.approx(0.0, abs=1e-9)
    assert flat.summary()["gradient_err"] == pytest.approx(profile[0] - profile[2], rel=1e-6)


def test_blue_knots_are_found_recalled_and_false_ones_counted():
    truth = _galaxy(b_centre=10, b_edge=5)
    truth[30:34, 30:34, 2] = -20  # a true blue knot (16 px)
    truth[60:63, 60:63, 2] = -20  # another (9 px)
    labels, count = blue_knots(truth, truth[..., 0] > 15)
    assert count == 2
    prediction = truth.copy()
    prediction[60:63, 60:63, 2] = 5  # misses the second knot
    prediction[45:48, 20:23, 2] = -20  # invents one
    acc = ScienceAccumulator()
    acc.add(truth, prediction)
    summary = acc.summary()
    assert summary["knot_recall"] == pytest.approx(0.5)
    assert summary["knot_precision"] == pytest.approx(0.5)
    assert summary["true_knots"] == 2


def test_a_black_image_has_no_profile_and_no_knots_without_crashing():
    acc = ScienceAccumulator()
    acc.add(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)))
    summary = acc.summary()
    assert np.isnan(summary["gradient_err"]) and np.isnan(summary["knot_recall"])
