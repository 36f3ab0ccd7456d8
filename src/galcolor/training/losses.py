"""The regression losses, with sky pixels down-weighted so the galaxy drives learning."""

from __future__ import annotations

import torch

from ..color.lab import AB_SCALE, denormalise_ab
from ..evaluation.metrics import SIGNAL_L
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
