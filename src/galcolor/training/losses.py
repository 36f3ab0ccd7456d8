"""The regression losses, with sky pixels down-weighted so the galaxy drives learning: on the colour
(L1 or CIEDE2000), and on its layout inside the galaxy (contrast_loss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..color.lab import AB_SCALE, denormalise_ab, normalise_ab
from ..evaluation.metrics import SIGNAL_L
from ..models.galaxy_colour import flux_weighted_mean
from .perceptual import ciede2000


def weighted_ab_loss(pred: torch.Tensor, target: torch.Tensor, lightness: torch.Tensor, sky_weight: float) -> torch.Tensor:
    """L1 between normalised ab maps, sky pixels down-weighted so the galaxy drives learning."""
    weights = torch.where(lightness > SIGNAL_L, 1.0, sky_weight)  # (B, 1, H, W)
    # clamp: with sky_weight 0, a batch of pure sky has no weight at all (0 / 0 would be NaN)
    return (weights * (pred - target).abs()).sum() / (weights.sum() * pred.shape[1]).clamp(min=1e-12)


def weighted_de00_loss(pred: torch.Tensor, true_lab: torch.Tensor, sky_weight: float) -> torch.Tensor:
    """Mean CIEDE2000 between the truth and (true L, predicted ab), the metric the model is judged
    by, sky pixels down-weighted as in weighted_ab_loss. Divided by AB_SCALE so that it sits on the
    scale of the normalised L1 loss and an adversarial weight means the same with either loss."""
    lightness = true_lab[:, :1]
    weights = torch.where(lightness[:, 0] > SIGNAL_L, 1.0, sky_weight)  # (B, H, W)
    difference = ciede2000(true_lab, torch.cat([lightness, denormalise_ab(pred.float())], dim=1))
    return (weights * difference).sum() / weights.sum().clamp(min=1e-12) / AB_SCALE


# --- Layout: the colour's deviation from the galaxy's own mean, and its local contrast (issue #29) ---
SURROUNDINGS_SIGMA = 6.0  # px: as inference.science's blue excess, the galaxy "around" a pixel
DEVIATION_BIN = 2.0 / AB_SCALE  # rebalancing bins of the true deviation's size: 2 ab wide
DEVIATION_BINS = 16  # the last holds every deviation of 30 ab or more


def _smoothing_matrix(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """(size, size) Gaussian smoothing along one axis, zero outside the image, unnormalised (only ratios
    of smoothed maps are taken). A matrix product is several times faster on CPU than a depthwise
    convolution with a kernel this long."""
    offset = (torch.arange(size, device=device)[:, None] - torch.arange(size, device=device)[None, :]).float()
    return torch.where(offset.abs() <= 3 * sigma, torch.exp(-0.5 * (offset / sigma) ** 2), 0.0)


def layout_maps(ab: torch.Tensor, lightness: torch.Tensor, sigma: float = SURROUNDINGS_SIGMA) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2, H, W) ab, (B, 1, H, W) L -> (the colour minus the galaxy's flux-weighted mean colour, the
    colour minus the galaxy around it (L-weighted over signal pixels, smoothed at SURROUNDINGS_SIGMA: the
    blue excess of inference.science, negated, for a* and b*; 0 in sky far from any signal)). A flat
    colour has both zero, and a colour shifted by a constant has both unchanged; `sigma` in this map's pixels."""
    mean, _ = flux_weighted_mean(lightness, ab)
    weight = torch.where(lightness > SIGNAL_L, lightness, torch.zeros_like(lightness)).float()
    both = torch.cat([ab.float() * weight, weight], dim=1)
    rows, columns = (_smoothing_matrix(n, sigma, ab.device) for n in ab.shape[2:])
    blurred = rows @ both @ columns.T
    near = blurred[:, 2:] > 1e-6  # sky farther than 3 sigma from any signal has no surroundings: no contrast
    local = torch.where(near, ab.float() - blurred[:, :2] / blurred[:, 2:].clamp_min(1e-6), 0.0)
    return ab.float() - mean[:, :, None, None], local


def rebalancing_weights(size: torch.Tensor, signal: torch.Tensor, mix: float) -> torch.Tensor:
    """Per-pixel weights that make rare large deviations count as much as common small ones, as Zhang et
    al. (2016) rebalance rare colours: 1 / ((1 - mix) p + mix / Q) of the size's bin, p its share of the
    batch's signal pixels, normalised to mean 1 over them. mix 1 weighs every pixel alike."""
    bins = (size / DEVIATION_BIN).long().clamp(max=DEVIATION_BINS - 1)
    counts = torch.bincount(bins[signal], minlength=DEVIATION_BINS).float()
    share = counts / counts.sum().clamp_min(1.0)
    per_bin = 1.0 / ((1.0 - mix) * share + mix / DEVIATION_BINS).clamp_min(1e-3)  # a bin without signal (sky alone)
    per_bin = per_bin / (per_bin * share).sum().clamp_min(1e-12)
    return per_bin[bins]


def contrast_loss(pred: torch.Tensor, target: torch.Tensor, lightness: torch.Tensor, sky_weight: float,
                  rebalance_mix: float = 0.5, pool: int = 2) -> torch.Tensor:
    """L1 between predicted and true layout (layout_maps, normalised ab), each pixel weighted by the
    rebalancing of its true deviation's size and sky pixels down-weighted: zero for a perfect
    prediction, the true layout's rebalanced size for a flat one of any mean. Taken on pool x pool
    averages (the U-Net's working scale: a quarter of the cost; regions stay 1-100 of them)."""
    if pool > 1:
        pred, target, lightness = (F.avg_pool2d(x.float(), pool) for x in (pred, target, lightness))
    deviation, local = layout_maps(torch.cat([pred.float(), target.float()]), torch.cat([lightness, lightness]),
                                   SURROUNDINGS_SIGMA / pool)
    (pred_deviation, true_deviation), (pred_local, true_local) = deviation.chunk(2), local.chunk(2)
    true_deviation, true_local = true_deviation.detach(), true_local.detach()
    signal = lightness > SIGNAL_L  # (B, 1, H, W)
    size = true_deviation.norm(dim=1, keepdim=True) + true_local.norm(dim=1, keepdim=True)
    weights = torch.where(signal, 1.0, sky_weight) * rebalancing_weights(size, signal, rebalance_mix).detach()
    difference = (pred_deviation - true_deviation).abs() + (pred_local - true_local).abs()
    return (weights * difference).sum() / (weights.sum() * pred.shape[1]).clamp(min=1e-12)


def regression_loss(pred: torch.Tensor, true_lab: torch.Tensor, ab_loss: str, sky_weight: float,
                    contrast_weight: float = 0.0, rebalance_mix: float = 0.5) -> torch.Tensor:
    """A regress head's loss: `ab_loss` ('l1' or 'de00') on the colour, plus contrast_weight x contrast_loss."""
    lightness, target = true_lab[:, :1], normalise_ab(true_lab[:, 1:])
    if ab_loss == "de00":
        loss = weighted_de00_loss(pred, true_lab, sky_weight)
    else:
        loss = weighted_ab_loss(pred.float(), target, lightness, sky_weight)
    if contrast_weight:
        loss = loss + contrast_weight * contrast_loss(pred, target, lightness, sky_weight, rebalance_mix)
    return loss
