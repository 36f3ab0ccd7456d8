from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.color import deltaE_ciede2000

from galcolor.color.lab import lab_array_to_rgb8
from galcolor.evaluation.metrics import LOWER_IS_BETTER, METRIC_NAMES, SIGNAL_L, MetricAccumulator, colourfulness, image_metrics, integrated_b, pearson_r, roc_auc


def galaxy_lab(seed: int = 0, size: int = 24, b_shift: float = 0.0) -> np.ndarray:
    """A Gaussian blob (L up to 90) on dark sky (L < 10), with smooth random a*, b*."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    r2 = (yy - size / 2) ** 2 + (xx - size / 2) ** 2
    lab = np.zeros((size, size, 3), dtype=np.float64)
    lab[..., 0] = 90.0 * np.exp(-r2 / (2 * (size / 6) ** 2)) + rng.uniform(0, 5, (size, size))
    lab[..., 1] = rng.uniform(-10, 10, (size, size))
    lab[..., 2] = rng.uniform(-20, 20, (size, size)) + b_shift
    return lab


def rgb(lab: np.ndarray) -> np.ndarray:
    return lab_array_to_rgb8(lab)


def test_constants():
    assert SIGNAL_L == 15.0
    assert METRIC_NAMES == (
        "psnr", "de00_fg", "ab_fg", "auc_fg", "dcf", "colour_r", "class_auc", "truth_class_auc",
    )
    assert LOWER_IS_BETTER == frozenset({"de00_fg", "ab_fg", "dcf"})


def test_perfect_prediction():
    lab = galaxy_lab()
    m = image_metrics(lab, lab.copy(), rgb(lab), rgb(lab))
    assert m["de00_fg"] == 0.0
    assert m["ab_fg"] == 0.0
    assert m["auc_fg"] == 1.0
    assert m["dcf"] == 0.0
    assert m["psnr"] == 100.0
    assert m["b_true"] == m["b_pred"]
    assert m["n_signal"] == np.sum(lab[..., 0] > SIGNAL_L) > 0
    assert set(m) == {
        "psnr", "de00_fg", "ab_fg", "auc_fg", "colourfulness_true", "colourfulness_pred",
        "dcf", "b_true", "b_pred", "n_signal",
    }


def test_constant_ab_offset():
    lab = galaxy_lab(1)
    signal = lab[..., 0] > SIGNAL_L
    pred = lab.copy()
    pred[signal, 1] += 3.0
    pred[signal, 2] += 4.0
    m = image_metrics(lab, pred, rgb(lab), rgb(pred))
    assert m["ab_fg"] == pytest.approx(5.0, abs=1e-12)
    expected = deltaE_ciede2000(lab[signal], pred[signal], channel_axis=-1).mean()
    assert m["de00_fg"] == pytest.approx(expected, rel=1e-12)
    assert m["de00_fg"] > 0
    # Every pixel is off by exactly 5: the curve is 0 for t = 0..4 and 1 for t = 5..150.
    assert m["auc_fg"] == pytest.approx(146 / 151, abs=1e-12)


def test_sky_does_not_affect_fg_metrics():
    lab = galaxy_lab(2)
    sky = lab[..., 0] <= SIGNAL_L
    assert sky.any()
    pred = lab.copy()
    pred[..., 1] += 2.0  # some error everywhere so fg metrics are non-trivial
    base = image_metrics(lab, pred, rgb(lab), rgb(pred))
    pred2 = pred.copy()
    pred2[sky, 0] = 60.0  # bright, strongly coloured sky in the prediction only
    pred2[sky, 1] = 50.0
    pred2[sky, 2] = -60.0
    changed = image_metrics(lab, pred2, rgb(lab), rgb(pred2))
    for key in ("de00_fg", "ab_fg", "auc_fg", "b_true", "b_pred", "n_signal"):
        assert changed[key] == base[key], key
    assert changed["psnr"] < base["psnr"]


def test_colourfulness_grey_and_pure_colour():
    grey = np.repeat(np.linspace(0, 255, 16, dtype=np.uint8)[None, :, None], 3, axis=2)
    grey = np.repeat(grey, 5, axis=0)
    assert colourfulness(grey) == 0.0
    red = np.zeros((4, 4, 3), dtype=np.uint8)
    red[..., 0] = 255
    # rg = 255, yb = 127.5, no variance: M = 0.3 * sqrt(255^2 + 127.5^2)
    assert colourfulness(red) == pytest.approx(0.3 * math.hypot(255.0, 127.5))
    half = np.zeros((2, 2, 3), dtype=np.uint8)
    half[0, :, 2] = 200  # blue top row, black bottom row
    # rg = 0 everywhere; yb = -200 or 0 -> sigma_yb = 100, mu_yb = -100
    assert colourfulness(half) == pytest.approx(100.0 + 0.3 * 100.0)


def test_integrated_b_weights_by_lightness():
    lab = np.array([[[20.0, 0.0, 10.0], [60.0, 0.0, -10.0]]])
    # (20 * 10 + 60 * -10) / 80 = -5
    assert integrated_b(lab) == pytest.approx(-5.0)
    with_sky = np.array([[[20.0, 0.0, 10.0], [60.0, 0.0, -10.0], [10.0, 0.0, 100.0]]])
    assert integrated_b(with_sky) == pytest.approx(-5.0)
    mask = np.array([[True, False, False]])
    assert integrated_b(with_sky, mask) == pytest.approx(10.0)
    assert math.isnan(integrated_b(np.zeros((3, 3, 3))))


def test_pearson_r():
    rng = np.random.default_rng(0)
    x = rng.normal(size=20)
    assert pearson_r(x, 2.5 * x + 7.0) == pytest.approx(1.0, abs=1e-12)
    assert pearson_r(x, -x) == pytest.approx(-1.0, abs=1e-12)
    assert math.isnan(pearson_r([1.0, 2.0], [1.0, 2.0]))
    assert math.isnan(pearson_r(x, np.ones_like(x)))
    assert pearson_r([1, 2, 3, float("nan")], [2, 4, 6, 1]) == pytest.approx(1.0)


def test_roc_auc():
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    assert roc_auc([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1]) == pytest.approx(0.875)
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))
    with pytest.raises(ValueError):
        roc_auc([0.1, 0.2], [0, 2])


def test_accumulator_colour_r_and_class_auc():
    acc = MetricAccumulator()
    neg = MetricAccumulator()
    for i in range(6):
        spiral = i % 2
        # spirals are bluer (more negative b*) in truth
        true = galaxy_lab(10 + i, b_shift=(-15.0 - 2 * i) if spiral else (10.0 + 2 * i))
        signal = true[..., 0] > SIGNAL_L
        pred = true.copy()
        pred[..., 2] = 0.5 * true[..., 2] + 3.0  # positive affine map of b*
        acc.add(true, pred, rgb(true), rgb(pred), label=spiral)
        flipped = true.copy()
        flipped[..., 2] = -true[..., 2]
        neg.add(true, flipped, rgb(true), rgb(flipped), label=spiral)
        assert signal.any()
    s = acc.summary()
    assert set(METRIC_NAMES) <= set(s)
    assert s["n_images"] == 6 and s["n_without_signal"] == 0
    assert s["colour_r"] == pytest.approx(1.0, abs=1e-9)
    assert s["class_auc"] == 1.0
    assert s["truth_class_auc"] == 1.0
    n = neg.summary()
    assert n["colour_r"] == pytest.approx(-1.0, abs=1e-9)
    assert n["class_auc"] == 0.0
    assert n["truth_class_auc"] == 1.0


def test_accumulator_without_labels_or_enough_images():
    acc = MetricAccumulator()
    lab = galaxy_lab(3)
    out = acc.add(lab, lab, rgb(lab), rgb(lab))
    assert out["ab_fg"] == 0.0
    s = acc.summary()
    assert math.isnan(s["colour_r"])  # fewer than 3 images
    assert math.isnan(s["class_auc"]) and math.isnan(s["truth_class_auc"])
    assert s["de00_fg"] == 0.0 and s["auc_fg"] == 1.0


def test_image_without_signal_does_not_crash():
    acc = MetricAccumulator()
    dark = np.zeros((8, 8, 3))
    dark[..., 0] = 5.0
    pred = dark.copy()
    pred[..., 1] = 20.0
    m = acc.add(dark, pred, rgb(dark), rgb(pred), label=0)
    assert math.isnan(m["de00_fg"]) and math.isnan(m["ab_fg"]) and math.isnan(m["auc_fg"])
    assert math.isnan(m["b_true"]) and m["n_signal"] == 0
    lab = galaxy_lab(4)
    pred = lab.copy()
    pred[..., 1] += 3.0
    pred[..., 2] += 4.0
    acc.add(lab, pred, rgb(lab), rgb(pred), label=1)
    s = acc.summary()
    assert s["n_images"] == 2 and s["n_without_signal"] == 1
    assert s["ab_fg"] == pytest.approx(5.0)
    assert math.isfinite(s["psnr"]) and math.isfinite(s["dcf"])
    assert math.isnan(s["class_auc"])  # the dark image has no colour; one class left

    only_dark = MetricAccumulator()
    only_dark.add(dark, dark, rgb(dark), rgb(dark))
    s = only_dark.summary()
    assert math.isnan(s["de00_fg"]) and s["n_without_signal"] == 1 and s["psnr"] == 100.0


def test_shape_mismatch_and_bad_label():
    lab = galaxy_lab(5)
    with pytest.raises(ValueError):
        image_metrics(lab, lab[:-1], rgb(lab), rgb(lab))
    with pytest.raises(ValueError):
        MetricAccumulator().add(lab, lab, rgb(lab), rgb(lab), label=2)
