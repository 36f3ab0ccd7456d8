"""Each galaxy at its own overall colour and each survey at its own strength: what every inference path
(whole frames, tiles, row bands, ONNX) applies to the colour network's ab, in the same arithmetic.

The colour network's ab is shifted so that its flux-weighted mean over signal pixels is the galaxy's
colour: a user's hint (`--galaxy-colour`, `--colour-from`) or the galaxy-colour stage's estimate. The
shift is full on signal pixels and fades out over the faint outskirts (L from SKY_L to SIGNAL_L), so
the sky keeps the network's near-neutral colour and no edge appears at the signal threshold. Both the
mean and the fade are read on the user's own L, the lightness the output shows (the stage reads the
canonical L the network sees); the ONNX graph of a model with a stage takes that L as a second input.
"""

from __future__ import annotations

import torch

from ..models.galaxy_colour import SIGNAL_L, GalaxyColourNet, flux_weighted_sums

SKY_L = 5.0  # below this L the shift is 0: sky


def survey_weights(chosen: torch.Tensor | None, logits: torch.Tensor | None) -> torch.Tensor | None:
    """(B, S) weights of the surveys: the one the user named (one-hot), else the recogniser's
    probabilities; None for a network of no surveys."""
    if chosen is not None:
        return chosen.float()
    if logits is None:
        return None
    return torch.softmax(logits.float(), dim=1)


def stage_estimate(stage: GalaxyColourNet | None, network_input: torch.Tensor, user_input: torch.Tensor,
                   weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """((B, 2) the stage's mean (a*, b*), (B,) its trust) from the (padded, normalised) input the colour
    network saw or the user's own L padded alike, whichever the stage reads; None without a stage."""
    if stage is None:
        return None
    seen = network_input if stage.canonical else user_input
    stage_weights = weights if stage.shape[0] > 1 else None
    target, trust = stage.estimate(seen.float().to(next(stage.parameters()).device), stage_weights)
    return target.to(network_input.device), trust.to(network_input.device)


def shift_weight(seen_lightness: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) L in [0, 100] -> how much of the galaxy-colour shift each pixel takes, 0 to 1."""
    return ((seen_lightness.float() - SKY_L) / (SIGNAL_L - SKY_L)).clamp(0.0, 1.0)


def shift_of(ab_sum: torch.Tensor, weight_sum: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """(B, 2) the shift that moves a prediction whose L-weighted ab sum and weight over signal pixels
    are these towards target = ((B, 2) mean colour, (B,) trust): all the way at trust 1, not at all
    at 0; 0 for an image without signal."""
    colour, trust = target
    current = ab_sum / weight_sum.clamp_min(1e-6)[:, None]
    shift = (colour.float() - current) * trust.float().to(current.device)[:, None]
    return torch.where(weight_sum[:, None] > 0, shift, torch.zeros_like(current))


def shifted(ab: torch.Tensor, seen_lightness: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """(B, 2, H, W) ab moved so that its flux-weighted mean over signal pixels is target's colour (B, 2),
    as far as its trust (B,) says."""
    if target is None:
        return ab
    shift = shift_of(*flux_weighted_sums(seen_lightness, ab), target)
    return apply_shift(ab, seen_lightness, shift)


def apply_shift(ab: torch.Tensor, seen_lightness: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    return ab + shift.to(ab.dtype)[:, :, None, None] * shift_weight(seen_lightness).to(ab.dtype)


def faded(ab: torch.Tensor, seen_lightness: torch.Tensor, factor: torch.Tensor, hint: torch.Tensor | None) -> torch.Tensor:
    """ab times the colour factor (caution and saturation, (B, 1, 1, 1)); with the user's hint of the
    galaxy's mean colour (B, 2), only the structure around that mean is scaled: the user told us the colour."""
    factor = factor.to(ab.device, ab.dtype)
    if hint is None:
        return ab * factor
    mean_field = hint.to(ab.device, ab.dtype)[:, :, None, None] * shift_weight(seen_lightness).to(ab.device, ab.dtype)
    return mean_field + (ab - mean_field) * factor


def saturation_of(uniform: float, per_survey: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor | float:
    """(B,) the saturation of each image: the recognised surveys' own, mixed by their weights, where the
    model has one per survey and the user set none; else the model's one saturation (a float)."""
    if per_survey is None or weights is None:
        return float(uniform)
    return weights.float() @ per_survey.float().to(weights.device)
