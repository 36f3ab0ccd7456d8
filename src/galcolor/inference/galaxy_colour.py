"""Each galaxy at its own overall colour and each survey at its own strength: what every inference path
(whole frames, tiles, row bands, ONNX) applies to the colour network's ab, in the same arithmetic.

The colour network's ab is shifted so that its flux-weighted mean over signal pixels is the galaxy's
colour: a user's hint (`--galaxy-colour`, `--colour-from`) or the galaxy-colour stage's estimate. The
shift is full on signal pixels and fades out over the faint outskirts (L from SKY_L to SIGNAL_L), so
the sky keeps the network's near-neutral colour and no edge appears at the signal threshold. Point
sources (foreground stars, mostly) take no shift: a star's colour is not its galaxy's, so it keeps the
network's own (near neutral: on SDSS the network's point sources are less chromatic than the truth's).
The test is made of pooling windows, so that whole frames, tiles, row bands and ONNX all agree. Both the
mean and the fade are read on the user's own L, the lightness the output shows (the stage reads the
canonical L the network sees); the ONNX graph of a model with a stage takes that L as a second input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.galaxy_colour import SIGNAL_L, GalaxyColourNet, flux_weighted_sums

SKY_L = 5.0  # below this L the shift is 0: sky
POINT_WINDOW = 11  # px: a point source fills at most POINT_SHARE of the window of this side around each of its pixels
POINT_SHARE = 0.25  # (a PSF-sized star at SDSS seeing, about 1.5 px rms, fills about 0.2; a galaxy's edge about 0.5)
POINT_PEAK_WINDOW = 7  # px: and peaks at POINT_PEAK_L or more within the window of this side
POINT_PEAK_L = 40.0
POINT_CONTEXT = POINT_WINDOW // 2  # rows beyond a band that decide its pixels


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


def point_like(lightness: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) L in [0, 100] -> 1.0 on pixels of small, isolated, bright sources, else 0.0. Beyond
    the image is black sky (zero padding), as the network's own padding is."""
    lightness = lightness.float()
    share = F.avg_pool2d((lightness > SIGNAL_L).float(), POINT_WINDOW, stride=1, padding=POINT_WINDOW // 2, count_include_pad=True)
    peak = F.max_pool2d(F.pad(lightness, (POINT_PEAK_WINDOW // 2,) * 4), POINT_PEAK_WINDOW, stride=1)
    return ((share <= POINT_SHARE) & (peak >= POINT_PEAK_L)).float()


def shift_weight(seen_lightness: torch.Tensor, points: bool = False) -> torch.Tensor:
    """(B, 1, H, W) L in [0, 100] -> how much of the galaxy-colour shift each pixel takes, 0 to 1: none
    on sky, and with `points` (a model's `point_sources_unshifted`) none on point sources."""
    ramp = ((seen_lightness.float() - SKY_L) / (SIGNAL_L - SKY_L)).clamp(0.0, 1.0)
    return ramp * (1.0 - point_like(seen_lightness)) if points else ramp


def shift_of(ab_sum: torch.Tensor, weight_sum: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """(B, 2) the shift that moves a prediction whose L-weighted ab sum and weight over signal pixels
    are these towards target = ((B, 2) mean colour, (B,) trust): all the way at trust 1, not at all
    at 0; 0 for an image without signal."""
    colour, trust = target
    current = ab_sum / weight_sum.clamp_min(1e-6)[:, None]
    shift = (colour.float() - current) * trust.float().to(current.device)[:, None]
    return torch.where(weight_sum[:, None] > 0, shift, torch.zeros_like(current))


def shifted(ab: torch.Tensor, seen_lightness: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor] | None,
            points: bool = False) -> torch.Tensor:
    """(B, 2, H, W) ab moved so that its flux-weighted mean over signal pixels is target's colour (B, 2),
    as far as its trust (B,) says."""
    if target is None:
        return ab
    shift = shift_of(*flux_weighted_sums(seen_lightness, ab), target)
    return apply_shift(ab, seen_lightness, shift, points=points)


def apply_shift(ab: torch.Tensor, seen_lightness: torch.Tensor, shift: torch.Tensor, weight: torch.Tensor | None = None,
                points: bool = False) -> torch.Tensor:
    """`weight`: shift_weight already made (a row band's, from rows beyond it too); else made from seen_lightness."""
    weight = shift_weight(seen_lightness, points) if weight is None else weight
    return ab + shift.to(ab.dtype)[:, :, None, None] * weight.to(ab.device, ab.dtype)


def faded(ab: torch.Tensor, seen_lightness: torch.Tensor, factor: torch.Tensor, hint: torch.Tensor | None,
          weight: torch.Tensor | None = None, points: bool = False) -> torch.Tensor:
    """ab times the colour factor (caution and saturation, (B, 1, 1, 1)); with the user's hint of the
    galaxy's mean colour (B, 2), only the structure around that mean is scaled: the user told us the colour."""
    factor = factor.to(ab.device, ab.dtype)
    if hint is None:
        return ab * factor
    weight = shift_weight(seen_lightness, points) if weight is None else weight
    mean_field = hint.to(ab.device, ab.dtype)[:, :, None, None] * weight.to(ab.device, ab.dtype)
    return mean_field + (ab - mean_field) * factor


def saturation_of(uniform: float, per_survey: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor | float:
    """(B,) the saturation of each image: the recognised surveys' own, mixed by their weights, where the
    model has one per survey and the user set none; else the model's one saturation (a float)."""
    if per_survey is None or weights is None:
        return float(uniform)
    return weights.float() @ per_survey.float().to(weights.device)
