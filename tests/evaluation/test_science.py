import numpy as np
import pytest

from galcolor.evaluation.science import RADIAL_EDGES, RegionTally, ScienceAccumulator, lightness_clumps, red_blue_auc
from galcolor.inference.science import TRUE_EXCESS, galaxy_ellipse, radial_profile, starforming_regions


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


def _with_clumps(lab, centres, b=-15.0, boost=0.0, half=2):
    out = lab.copy()
    for cy, cx in centres:
        out[cy - half : cy + half, cx - half : cx + half, 2] = b
        out[cy - half : cy + half, cx - half : cx + half, 0] += boost
    return out


def test_star_forming_regions_are_blue_compact_clumps_and_recall_and_precision_count_them():
    truth = _with_clumps(_galaxy(b_centre=10, b_edge=5), [(40, 30), (56, 66)])  # two 16 px blue clumps
    labels, count = starforming_regions(truth, TRUE_EXCESS)
    assert count == 2
    assert labels[40, 30] > 0 and labels[56, 66] > 0 and labels[48, 48] == 0
    prediction = _with_clumps(_galaxy(b_centre=10, b_edge=5), [(40, 30), (48, 20)])  # finds one, invents one
    acc = ScienceAccumulator()
    acc.add(truth, prediction)
    summary = acc.summary()
    assert summary["sf_recall"] == pytest.approx(0.5)
    assert summary["sf_precision"] == pytest.approx(0.5)
    assert summary["true_regions"] == 2


def test_excess_rank_is_one_for_the_truth_zero_for_a_flat_colour_and_between_for_a_misplaced_clump():
    """The threshold-free score: does the colour put bluer-than-around-it pixels where the truth does?"""
    truth = _with_clumps(_galaxy(b_centre=10, b_edge=5), [(40, 30), (56, 66)])
    flat = truth.copy()
    flat[..., 1:] = np.where(truth[..., :1] > 15, 7.0, 0.0)
    half = _with_clumps(_galaxy(b_centre=10, b_edge=5), [(40, 30), (48, 20)])  # one clump right, one invented
    scores = []
    for prediction in (truth, half, flat):
        acc = ScienceAccumulator()
        acc.add(truth, prediction)
        scores.append(acc.summary()["excess_rank"])
    assert scores[0] == pytest.approx(1.0)
    assert scores[2] == 0.0
    assert 0.0 < scores[1] < 0.9


def test_a_uniformly_blue_galaxy_has_no_star_forming_regions():
    """Regions are bluer than the galaxy around them, not merely blue."""
    lab = _galaxy(b_centre=-20, b_edge=-20)
    assert starforming_regions(lab, TRUE_EXCESS)[1] == 0


def test_the_colour_free_baseline_finds_bright_clumps_whatever_their_colour():
    red_clumps = _with_clumps(_galaxy(b_centre=10, b_edge=5), [(48, 40)], b=30.0, boost=20.0)
    labels, count = lightness_clumps(red_clumps[..., 0], 4.0)
    assert count == 1 and labels[48, 40] > 0
    tally = RegionTally((4.0,))
    tally.add(*starforming_regions(red_clumps, TRUE_EXCESS), [(labels, count)])
    assert tally.true_regions == 0 and tally.curve()[0][2] == 0.0  # a red clump is not star-forming: precision 0


def test_red_blue_auc_is_one_for_the_truth_and_a_half_for_a_constant():
    rng = np.random.default_rng(0)
    true_b = np.concatenate([rng.normal(2, 2, 40), rng.normal(16, 2, 40)])
    assert red_blue_auc(true_b, true_b) == pytest.approx(1.0)
    assert red_blue_auc(true_b, np.zeros_like(true_b)) == pytest.approx(0.5)


def test_sky_chroma_is_measured_away_from_the_galaxy():
    truth = _galaxy()
    tinted = truth.copy()
    tinted[..., 1] = np.where(truth[..., 0] > 15, truth[..., 1], 3.0)  # sky painted a* 3, galaxy untouched
    acc = ScienceAccumulator()
    acc.add(truth, tinted)
    summary = acc.summary()
    assert summary["sky_chroma"] == pytest.approx(3.0) and summary["true_sky_chroma"] == pytest.approx(0.0)


def test_a_black_image_has_no_profile_and_no_regions_without_crashing():
    acc = ScienceAccumulator()
    acc.add(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)))
    summary = acc.summary()
    assert np.isnan(summary["gradient_err"]) and np.isnan(summary["sf_recall"]) and summary["true_regions"] == 0
