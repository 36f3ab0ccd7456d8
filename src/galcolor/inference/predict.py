"""Colourize L at full resolution: pad to what the network needs, predict ab, keep the user's L."""

from __future__ import annotations

import dataclasses
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from ..color.lab import normalise_lightness, rgb_to_lab
from ..color.lightness import canonical_lightness
from ..errors import Stopped
from ..models.caution import PooledFeatures, pooled_features
from ..models.checkpoint import LoadedModel
from ..models.conditioning import galaxy_colour_input
from ..models.device import autocast
from .galaxy_colour import faded, saturation_of, shifted, stage_estimate, survey_weights

TILE = 1024  # images with a side above this are coloured in overlapping tiles of this size


@dataclass
class Verdict:
    """What the whole frame decided for an image's colour, for the user to see (progress line, --report)."""

    survey: str | None  # the survey it was coloured as (named, or the recogniser's likeliest); None: a model of no surveys
    survey_probability: float | None  # the recogniser's probability of that survey (1 when named)
    colour_kept: float  # the caution's share of the colour kept: 1 untouched, 0 faded to grey
    saturation: float
    galaxy_colour: tuple[float, float] | None  # the flux-weighted mean (a*, b*) the colour was shifted to
    galaxy_colour_from: str  # "hint", "stage" or "network" (not shifted)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def predict_ab(model: LoadedModel, lightness: torch.Tensor, verdicts: list[Verdict] | None = None) -> torch.Tensor:
    """(B, 1, H, W) L in [0, 100] -> (B, 2, H, W) predicted ab, on the model's device: shifted to
    each galaxy's colour (a hint, or the galaxy-colour stage's estimate), faded towards grey where the
    image is unlike the training set (the model's caution) and scaled by its saturation (its
    recognised survey's, for a model with one per survey). `verdicts` receives one Verdict per image."""
    seen = network_lightness(model, lightness)
    with watching(model) as features:
        output, logits, target = output_and_target(model, seen, lightness)
        ab = model.decode(output)
    weights = survey_weights(model.survey_weights(ab.shape[0], ab.device), logits)
    return _finish(shifted(ab, lightness.to(ab.device), target, model.point_sources_unshifted), lightness, model, features, weights, target, verdicts)


Target = tuple[torch.Tensor, torch.Tensor]  # (B, 2) the galaxy colour to shift to, (B,) how far (its trust)


def hint_of(model: LoadedModel, target: Target | None) -> torch.Tensor | None:
    """The (B, 2) colour where it is the user's hint (kept whole by caution and saturation); None for the stage's estimate."""
    return target[0] if model.galaxy_colour_hint is not None and target is not None else None


def galaxy_target(model: LoadedModel, seen: torch.Tensor, shown: torch.Tensor, weights: torch.Tensor | None) -> Target | None:
    """The flux-weighted mean (a*, b*) each image is shifted to, and how far: the user's hint, else the
    galaxy-colour stage's estimate from the (B, 1, H, W) L the network sees or the user's own L
    `shown`, each padded as the network's input; None: the network's own colour stands."""
    if model.galaxy_colour_hint is not None:
        batch, device = seen.shape[0], next(model.network.parameters()).device
        return torch.tensor(model.galaxy_colour_hint, device=device).expand(batch, 2), torch.ones(batch, device=device)
    if model.galaxy_colour is None:  # no padding to do for nothing: this runs for every image
        return None
    with torch.inference_mode():
        return stage_estimate(model.galaxy_colour, network_input(model, seen), network_input(model, shown), weights)


@contextmanager
def watching(model: LoadedModel):
    """Collect the bottleneck features that caution needs while the network runs (None when off)."""
    if not model.cautious:
        yield None
        return
    with pooled_features(model.network) as features:
        yield features


def caution_kept(model: LoadedModel, features: PooledFeatures | None, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) or (1,) the share of colour caution keeps: confidence ** strength (against each survey's
    own spread, by the survey weights, for a caution per survey), 1 when off."""
    if features is None:
        return torch.ones(1)
    return model.caution.confidence(features.mean(), None if weights is None else weights.cpu()) ** model.caution_strength


def strengths(model: LoadedModel, features: PooledFeatures | None, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """((B,) or (1,) the share of colour caution keeps, (B,) or (1,) the saturation: the recognised
    survey's where the model has one per survey)."""
    per_survey = None if model.survey_saturation is None else torch.tensor(model.survey_saturation)
    saturation = saturation_of(model.saturation, per_survey, None if weights is None else weights.float().cpu())
    return caution_kept(model, features, weights).float(), torch.as_tensor(saturation).float().reshape(-1)


def colour_factor(model: LoadedModel, features: PooledFeatures | None, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 1, 1, 1) multiplier of ab: caution's confidence ** strength, times the saturation."""
    kept, saturation = strengths(model, features, weights)
    return (kept * saturation).view(-1, 1, 1, 1)


def _finish(ab: torch.Tensor, lightness: torch.Tensor, model: LoadedModel, features: PooledFeatures | None,
            weights: torch.Tensor | None, target: Target | None, verdicts: list[Verdict] | None) -> torch.Tensor:
    """Shifted ab, faded by caution and saturation, with each image's Verdict recorded."""
    kept, saturation = strengths(model, features, weights)
    record_verdicts(verdicts, model, weights, kept, saturation, target)
    return faded(ab, lightness, (kept * saturation).view(-1, 1, 1, 1), hint_of(model, target), points=model.point_sources_unshifted)


def record_verdicts(verdicts: list[Verdict] | None, model: LoadedModel, weights: torch.Tensor | None, kept: torch.Tensor,
                    saturation: torch.Tensor, target: Target | None) -> None:
    if verdicts is None:
        return
    weights_cpu = None if weights is None else weights.float().cpu()
    batch = len(weights_cpu) if weights_cpu is not None else (len(target[0]) if target is not None else len(kept))
    for index in range(batch):
        survey = probability = None
        if weights_cpu is not None:
            best = int(weights_cpu[index].argmax())
            survey, probability = model.config.surveys[best], round(float(weights_cpu[index, best]), 4)
        trusted = target is not None and float(target[1][index]) >= 0.5  # else mostly the network's own colour stands
        colour = tuple(round(float(v), 2) for v in target[0][index].cpu()) if trusted else None
        source = "hint" if model.galaxy_colour_hint is not None else "stage" if trusted else "network"
        verdicts.append(Verdict(survey, probability, round(float(kept[min(index, len(kept) - 1)]), 4),
                                round(float(saturation[min(index, len(saturation) - 1)]), 4), colour, source))


def network_lightness(model: LoadedModel, lightness: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) the user's L -> the L the network sees: canonical (stretch-free) where the model wants it."""
    if model.config.input_lightness == "raw":
        return lightness
    return canonical_lightness(lightness, model.lightness_reference)


def network_input(model: LoadedModel, lightness: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) L the network sees -> normalised, zero-padded (black sky, what surrounds a
    galaxy anyway) to the model's size multiple, on its device, channels-last."""
    device = next(model.network.parameters()).device
    multiple = model.config.size_multiple
    height, width = lightness.shape[-2:]
    x = F.pad(normalise_lightness(lightness.to(device, torch.float32)), (0, (-width) % multiple, 0, (-height) % multiple))  # float64 would break autocast
    return x.contiguous(memory_format=torch.channels_last)


def network_output(model: LoadedModel, lightness: torch.Tensor, *, prepared: bool = False,
                   condition: torch.Tensor | None = None, with_logits: bool = False, galaxy_colour: torch.Tensor | None = None):
    """(B, 1, H, W) L in [0, 100] -> the raw network output at (H, W): normalised ab or bin logits.

    prepared: L is already what the network sees (network_lightness of the whole image, for tiles).
    condition: a conditioned network's vector for the whole image (judge_frame), so that
    every tile of it is coloured as one survey, with one whole-galaxy view; galaxy_colour: with it,
    a colour-conditioned network's (B, 3) input (told_colour of judge_frame's target).
    Unprepared L with neither: a colour-conditioned network is told its galaxy colour as predict_ab
    tells it (told_output); prepared L with neither: it is told none (unknown).
    with_logits: also return the survey recogniser's (B, S) logits (None where there are none)."""
    if not prepared and condition is None and galaxy_colour is None and colour_conditioned(model):
        output, logits, _ = told_output(model, network_lightness(model, lightness), lightness)
        return (output, logits) if with_logits else output
    if not prepared:
        lightness = network_lightness(model, lightness)
    height, width = lightness.shape[-2:]
    x = network_input(model, lightness)
    told = {} if galaxy_colour is None else {"galaxy_colour": galaxy_colour.to(x.device)}
    with torch.inference_mode(), autocast(x.device):
        survey = model.survey_weights(x.shape[0], x.device)
        logits = None
        if condition is not None:
            output = model.network(x, condition=condition.to(x.device), **told)
        elif with_logits and recognises_surveys(model):
            output, logits = model.network(x, survey=survey, with_survey_logits=True, **told)
        else:
            output = model.network(x, **told) if survey is None else model.network(x, survey=survey, **told)
    output = output[..., :height, :width].float()
    return (output, None if logits is None else logits.float()) if with_logits else output


def colour_conditioned(model: LoadedModel) -> bool:
    """Whether the network's decoder is told each galaxy's colour (models.config galaxy_colour_conditioned)."""
    return bool(getattr(model.network, "colour_conditioned", False))


def told_colour(model: LoadedModel, target: Target | None) -> torch.Tensor | None:
    """The (B, 3) galaxy-colour input a colour-conditioned network is told for a target (its trust as
    how far the colour is known); None: unknown, or a network that is told nothing."""
    return None if target is None or not colour_conditioned(model) else galaxy_colour_input(*target)


def output_and_target(model: LoadedModel, seen: torch.Tensor, shown: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, Target | None]:
    """The network's raw output at (H, W) for (B, 1, H, W) L it sees and the user's own L, its recogniser's
    (B, S) logits, and the galaxy colour to shift to (galaxy_target): decided after the network for one
    that is not told it, between its encoder and decoder for one that is (told_output)."""
    if colour_conditioned(model):
        return told_output(model, seen, shown)
    output, logits = network_output(model, seen, prepared=True, with_logits=True)
    return output, logits, galaxy_target(model, seen, shown, survey_weights(model.survey_weights(output.shape[0], output.device), logits))


def told_output(model: LoadedModel, seen: torch.Tensor, shown: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, Target | None]:
    """A colour-conditioned network's raw output at (H, W) for (B, 1, H, W) L it sees and the user's own
    L, its recogniser's (B, S) logits and the galaxy colour it was told: the encoder's survey guess
    chooses the stage's survey, whose estimate (or the user's hint) the decoder is then told."""
    height, width = seen.shape[-2:]
    x = network_input(model, seen)
    chosen = model.survey_weights(x.shape[0], x.device)
    # Encoder and decoder in one autocast region, as a whole forward is; the stage between them in full
    # precision, as it runs for a network that is not told the colour.
    with torch.inference_mode(), autocast(x.device):
        skips, condition, logits = model.network.encode(x, survey=chosen)
        logits = None if logits is None else logits.float()
        with autocast(x.device, enabled=False):
            target = galaxy_target(model, seen, shown, survey_weights(chosen, logits))
        colour = told_colour(model, target)
        output = model.network.decode(x, skips, condition, None if colour is None else colour.to(x.device))
    return output[..., :height, :width].float(), logits, target


def recognises_surveys(model: LoadedModel) -> bool:
    return bool(model.config.surveys) and hasattr(model.network, "conditioning")


def central_part(lightness: torch.Tensor, tile: int = TILE) -> torch.Tensor:
    """The central tile x tile part of (B, 1, H, W) L: what a whole-image judgement of a large frame looks at."""
    height, width = lightness.shape[-2:]
    top, left = max(0, (height - tile) // 2), max(0, (width - tile) // 2)
    return lightness[..., top : top + tile, left : left + tile]


@dataclass
class FrameJudgement:
    """What a large frame's central tile decides for every tile of it: one survey, one whole-galaxy
    view, one galaxy colour."""

    condition: torch.Tensor | None  # (1, D) a conditioned network's vector; None without conditioning
    weights: torch.Tensor | None  # (1, S) survey weights; None for a network of no surveys
    target: Target | None  # the galaxy colour to shift to and its trust; None: the network's own


def judge_frame(model: LoadedModel, seen: torch.Tensor, shown: torch.Tensor) -> FrameJudgement:
    """The judgement of a frame from (1, 1, h, w) L the network sees and the user's own L of the same
    pixels (the central tile of a large frame)."""
    x = network_input(model, seen)
    condition = logits = None
    if hasattr(model.network, "conditioning"):  # no surveys and no global pathway (or not a U-Net): nothing shared
        with torch.inference_mode(), autocast(x.device):
            condition, logits = model.network.condition_of(x, model.survey_weights(1, x.device))
        condition = condition.float()
    weights = survey_weights(model.survey_weights(1, x.device), logits)
    return FrameJudgement(condition, weights, galaxy_target(model, seen, shown, weights))


def colorize_tensor(model: LoadedModel, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) sRGB in [0, 1] (grey or colour) -> (predicted Lab, input Lab), both (B, 3, H, W).

    The prediction keeps the input's own L exactly; only a and b come from the network.
    """
    device = next(model.network.parameters()).device
    with torch.inference_mode():
        input_lab = rgb_to_lab(rgb.to(device))
        ab = predict_ab(model, input_lab[:, :1])
        return torch.cat([input_lab[:, :1], ab], dim=1), input_lab


def predict_ab_tiled(model: LoadedModel, lightness: torch.Tensor, tile: int = TILE, overlap: int = 64,
                     verdicts: list[Verdict] | None = None) -> torch.Tensor:
    """Like predict_ab for one image of any size, in overlapping tiles blended with linear ramps.

    Weights fall to near zero at a tile's inner edges, so neighbouring tiles hand over smoothly and
    no seam shows. Besides the image and its result, memory holds one row of tiles. Returns
    (1, 2, H, W) ab on the CPU.
    """
    _, _, height, width = lightness.shape
    if height <= tile and width <= tile:
        return predict_ab(model, lightness, verdicts).cpu()
    seen = network_lightness(model, lightness)  # one mapping for the whole image, so tiles agree
    judged = judge_frame(model, central_part(seen, tile), central_part(lightness, tile))  # one survey, galaxy view and colour for all tiles
    ab = torch.empty((1, 2, height, width))
    with watching(model) as features:  # one caution verdict for the whole image: its features pooled over all tiles
        for top, band in blended_bands(model, lambda top, bottom: seen[:, :, top:bottom], height, width, tile, overlap,
                                       condition=judged.condition, galaxy_colour=told_colour(model, judged.target)):
            ab[:, :, top : top + band.shape[2]] = band
    return _finish(shifted(ab, lightness, judged.target, model.point_sources_unshifted), lightness, model, features, judged.weights, judged.target, verdicts)


def blended_bands(model: LoadedModel, network_rows, height: int, width: int, tile: int, overlap: int,
                  stop: threading.Event | None = None, condition: torch.Tensor | None = None,
                  galaxy_colour: torch.Tensor | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """(top, (1, 2, rows, W) ab) of consecutive row bands, top to bottom, each as soon as no later
    tile reaches it, so only one row of tiles is ever accumulated. `network_rows(top, bottom)` gives
    the L the network sees, (1, 1, bottom - top, W); `condition` and `galaxy_colour` what the whole frame
    decided (judge_frame). Not yet multiplied by colour_factor, which
    waits for every tile's features: the caller watches the model around the whole loop.
    Raises Stopped before the next tile once `stop` is set.

    Every pixel receives its tiles' weighted sums in the same order as a whole-image accumulator
    would, so the bands are exactly that accumulator's rows."""
    step = tile - overlap
    rows, columns = _tile_starts(height, tile, step), _tile_starts(width, tile, step)
    base, total, weight_sum = 0, torch.zeros((1, 2, 0, width)), torch.zeros((1, 1, 0, width))
    for index, top in enumerate(rows):
        bottom = min(top + tile, height)
        if bottom - base > total.shape[2]:  # extend the accumulator down to this row of tiles' bottom
            total = torch.cat([total, torch.zeros((1, 2, bottom - base - total.shape[2], width))], dim=2)
            weight_sum = torch.cat([weight_sum, torch.zeros((1, 1, bottom - base - weight_sum.shape[2], width))], dim=2)
        lightness = network_rows(top, bottom)
        ramp_y = _ramp(bottom - top, overlap, top > 0, bottom < height)[:, None]
        for left in columns:
            if stop is not None and stop.is_set():
                raise Stopped("interrupted")
            right = min(left + tile, width)
            ab = model.decode(network_output(model, lightness[:, :, :, left:right], prepared=True, condition=condition,
                                             galaxy_colour=galaxy_colour)).cpu()
            weight = ramp_y * _ramp(right - left, overlap, left > 0, right < width)[None, :]
            total[:, :, top - base : bottom - base, left:right] += ab * weight
            weight_sum[:, :, top - base : bottom - base, left:right] += weight
        final = rows[index + 1] if index + 1 < len(rows) else height  # later tiles start here
        yield base, total[:, :, : final - base] / weight_sum[:, :, : final - base]
        total, weight_sum, base = total[:, :, final - base :].clone(), weight_sum[:, :, final - base :].clone(), final


def _tile_starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def _ramp(length: int, overlap: int, fade_in: bool, fade_out: bool) -> torch.Tensor:
    """1 inside, rising linearly over `overlap` pixels at edges that border another tile."""
    ramp = torch.ones(length)
    rise = torch.linspace(1.0 / (overlap + 1), 1.0, overlap) if overlap else torch.ones(0)
    n = min(overlap, length)
    if fade_in and n:
        ramp[:n] = torch.minimum(ramp[:n], rise[:n])
    if fade_out and n:
        ramp[-n:] = torch.minimum(ramp[-n:], rise[:n].flip(0))
    return ramp
