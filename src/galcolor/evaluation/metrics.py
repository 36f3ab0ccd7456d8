"""Evaluation metrics for colourised galaxy images.

Definitions (fixed by the design doc):

* Signal pixels are those whose TRUE lightness exceeds ``SIGNAL_L`` (L* > 15); most of an SDSS
  frame is black sky, so per-pixel colour metrics are computed over signal pixels only ("fg").
* ``de00_fg``: mean CIEDE2000 between true and predicted Lab over signal pixels.
* ``ab_fg``: mean Euclidean a*b* error over signal pixels.
* ``auc_fg``: Zhang et al. (2016) AUC of the cumulative a*b*-error curve, thresholds 0..150 step 1
  (151 thresholds); the mean of the curve, in [0, 1], 1 = perfect.
* ``psnr``: PSNR of the whole 8-bit RGB image (peak 255). Identical images give ``PSNR_CAP``
  (100 dB) instead of infinity, so that averages stay finite.
* colourfulness: Hasler & Suesstrunk (2003) on 0..255 RGB; ``dcf`` = |M(pred) - M(true)|.
* integrated colour: L-weighted mean b* over signal pixels (``integrated_b``).
* ``colour_r``: Pearson r across images of predicted vs true integrated b* (nan when fewer than
  3 images or either side has zero variance).
* ``class_auc`` / ``truth_class_auc``: ROC AUC of the score -b* (bluer = more likely spiral)
  separating spirals (label 1) from non-spirals (label 0), from the prediction / from the truth;
  nan when labels were not given or only one class is present.

Per-image fg metrics are averaged over images; an image without signal pixels gets nan for them
and is left out of those averages (it still counts in ``n_images`` and ``n_without_signal``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata
from skimage.color import deltaE_ciede2000

SIGNAL_L: float = 15.0
AB_AUC_MAX: int = 150
PSNR_CAP: float = 100.0

METRIC_NAMES: tuple[str, ...] = (
    "psnr",
    "de00_fg",
    "ab_fg",
    "auc_fg",
    "dcf",
    "colour_r",
    "class_auc",
    "truth_class_auc",
)
LOWER_IS_BETTER: frozenset[str] = frozenset({"de00_fg", "ab_fg", "dcf"})

_THRESHOLDS = np.arange(0, AB_AUC_MAX + 1, dtype=np.float64)


def _as_lab(lab: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(lab, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name}: expected an (H, W, 3) Lab array, got shape {arr.shape}")
    return arr


def _as_rgb(rgb8: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(rgb8)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name}: expected an (H, W, 3) RGB array, got shape {arr.shape}")
    return arr.astype(np.float64)


def signal_mask(true_lab: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of signal pixels: true L* > SIGNAL_L."""
    return _as_lab(true_lab, "true_lab")[..., 0] > SIGNAL_L


def colourfulness(rgb8: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M of an (H, W, 3) RGB image on the 0..255 scale."""
    rgb = _as_rgb(rgb8, "rgb8")
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = math.sqrt(float(rg.var()) + float(yb.var()))
    mu = math.sqrt(float(rg.mean()) ** 2 + float(yb.mean()) ** 2)
    return sigma + 0.3 * mu


def integrated_b(lab: np.ndarray, signal: np.ndarray | None = None) -> float:
    """L-weighted (flux-weighted) mean b* over signal pixels; nan when there are none.

    ``signal`` defaults to this image's own L* > SIGNAL_L; pass the TRUE image's mask to score a
    prediction over the same pixels as the truth.
    """
    arr = _as_lab(lab, "lab")
    mask = arr[..., 0] > SIGNAL_L if signal is None else np.asarray(signal, dtype=bool)
    if mask.shape != arr.shape[:2]:
        raise ValueError(f"signal mask shape {mask.shape} does not match image {arr.shape[:2]}")
    weight = arr[..., 0][mask]
    total = float(weight.sum())
    if weight.size == 0 or total <= 0.0:
        return float("nan")
    return float((weight * arr[..., 2][mask]).sum() / total)


def psnr8(true_rgb8: np.ndarray, pred_rgb8: np.ndarray) -> float:
    """PSNR in dB of two 8-bit images (peak 255), capped at PSNR_CAP for identical images."""
    t = _as_rgb(true_rgb8, "true_rgb8")
    p = _as_rgb(pred_rgb8, "pred_rgb8")
    if t.shape != p.shape:
        raise ValueError(f"RGB shapes differ: {t.shape} vs {p.shape}")
    mse = float(np.mean((t - p) ** 2))
    if mse == 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(255.0**2 / mse))


def image_metrics(
    true_lab: np.ndarray,
    pred_lab: np.ndarray,
    true_rgb8: np.ndarray,
    pred_rgb8: np.ndarray,
) -> dict[str, float]:
    """Per-image metrics: psnr, de00_fg, ab_fg, auc_fg, colourfulness_true, colourfulness_pred,
    dcf, b_true, b_pred, n_signal. The fg metrics and b_* are nan when there is no signal."""
    t = _as_lab(true_lab, "true_lab")
    p = _as_lab(pred_lab, "pred_lab")
    if t.shape != p.shape:
        raise ValueError(f"Lab shapes differ: {t.shape} vs {p.shape}")
    mask = t[..., 0] > SIGNAL_L
    n_signal = int(mask.sum())
    if n_signal:
        ts, ps = t[mask], p[mask]
        de00 = float(np.mean(deltaE_ciede2000(ts, ps, channel_axis=-1)))
        ab_err = np.hypot(ts[:, 1] - ps[:, 1], ts[:, 2] - ps[:, 2])
        ab = float(ab_err.mean())
        curve = (ab_err[None, :] <= _THRESHOLDS[:, None]).mean(axis=1)
        auc = float(curve.mean())
    else:
        de00 = ab = auc = float("nan")
    cf_true = colourfulness(true_rgb8)
    cf_pred = colourfulness(pred_rgb8)
    return {
        "psnr": psnr8(true_rgb8, pred_rgb8),
        "de00_fg": de00,
        "ab_fg": ab,
        "auc_fg": auc,
        "colourfulness_true": cf_true,
        "colourfulness_pred": cf_pred,
        "dcf": abs(cf_pred - cf_true),
        "b_true": integrated_b(t, mask),
        "b_pred": integrated_b(p, mask),
        "n_signal": float(n_signal),
    }


def _finite_pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"lengths differ: {xa.size} vs {ya.size}")
    keep = np.isfinite(xa) & np.isfinite(ya)
    return xa[keep], ya[keep]


def pearson_r(x, y) -> float:
    """Pearson correlation of finite (x, y) pairs; nan with fewer than 3 pairs or zero variance."""
    xa, ya = _finite_pairs(x, y)
    if xa.size < 3:
        return float("nan")
    xc = xa - xa.mean()
    yc = ya - ya.mean()
    sxx = float(np.dot(xc, xc))
    syy = float(np.dot(yc, yc))
    if sxx <= 0.0 or syy <= 0.0:
        return float("nan")
    return float(np.clip(np.dot(xc, yc) / math.sqrt(sxx * syy), -1.0, 1.0))


def roc_auc(scores, labels) -> float:
    """ROC AUC of ``scores`` for labels 1 (positive) vs 0, from mid-ranks (ties count one half).

    Equals the Mann-Whitney U of the positives divided by n_pos * n_neg. Pairs with a non-finite
    score are dropped; nan when either class is absent.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    lab = np.asarray(labels).ravel()
    if s.shape != lab.shape:
        raise ValueError(f"lengths differ: {s.size} scores vs {lab.size} labels")
    if not np.all(np.isin(lab, (0, 1))):
        raise ValueError("labels must be 0 or 1")
    keep = np.isfinite(s)
    s, pos = s[keep], lab[keep].astype(bool)
    n_pos = int(pos.sum())
    n_neg = int(pos.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks for ties
    u = float(ranks[pos].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def _nanmean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")


class MetricAccumulator:
    """Collects per-image metrics (and optional spiral labels) and summarises them."""

    def __init__(self) -> None:
        self.per_image: list[dict[str, float]] = []
        self.labels: list[int | None] = []

    def add(
        self,
        true_lab: np.ndarray,
        pred_lab: np.ndarray,
        true_rgb8: np.ndarray,
        pred_rgb8: np.ndarray,
        label: int | None = None,
    ) -> dict[str, float]:
        """Score one image; ``label`` is 1 for a spiral, 0 for a non-spiral, None if unknown."""
        if label is not None:
            if int(label) not in (0, 1) or int(label) != label:
                raise ValueError(f"label must be 0, 1 or None, got {label!r}")
            label = int(label)
        metrics = image_metrics(true_lab, pred_lab, true_rgb8, pred_rgb8)
        self.per_image.append(metrics)
        self.labels.append(label)
        return dict(metrics)

    def __len__(self) -> int:
        return len(self.per_image)

    def subset(self, indices: Sequence[int]) -> "MetricAccumulator":
        """The images added at `indices` (0 = the first added) as an accumulator of their own,
        without scoring them again: e.g. one survey's share of a validation split."""
        part = MetricAccumulator()
        part.per_image = [self.per_image[i] for i in indices]
        part.labels = [self.labels[i] for i in indices]
        return part

    def _column(self, key: str) -> list[float]:
        return [m[key] for m in self.per_image]

    def summary(self) -> dict[str, float]:
        """The METRIC_NAMES (floats, nan where undefined) plus n_images and n_without_signal (ints).

        class_auc / truth_class_auc use only the images added with a label.
        """
        out: dict[str, float] = {}
        for key in ("psnr", "de00_fg", "ab_fg", "auc_fg", "dcf"):
            out[key] = _nanmean(self._column(key))
        b_true = self._column("b_true")
        b_pred = self._column("b_pred")
        out["colour_r"] = pearson_r(b_pred, b_true)
        labelled = [i for i, lab in enumerate(self.labels) if lab is not None]
        if labelled:
            labs = [self.labels[i] for i in labelled]
            out["class_auc"] = roc_auc([-b_pred[i] for i in labelled], labs)
            out["truth_class_auc"] = roc_auc([-b_true[i] for i in labelled], labs)
        else:
            out["class_auc"] = out["truth_class_auc"] = float("nan")
        out["n_images"] = len(self.per_image)
        out["n_without_signal"] = sum(1 for m in self.per_image if m["n_signal"] == 0)
        return out
