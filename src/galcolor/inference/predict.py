"""Colourize L at full resolution: pad to what the network needs, predict ab, keep the user's L."""

from __future__ import annotations

import dataclasses
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..color.lab import normalise_lightness, rgb_to_lab
from ..color.lightness import TABLE_BINS, apply_table, canonical_lightness, histogram, table_from_histogram
from ..errors import Stopped
from ..models.caution import PooledFeatures, pooled_features
from ..models.checkpoint import LoadedModel
from ..models.device import autocast
from ..models.galaxy_colour import flux_weighted_sums
from .galaxy_colour import POINT_CONTEXT, apply_shift, faded, saturation_of, shift_of, shift_weight, shifted, stage_estimate, survey_weights

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
        output, logits = network_output(model, seen, prepared=True, with_logits=True)
        ab = model.decode(output)
    weights = survey_weights(model.survey_weights(ab.shape[0], ab.device), logits)
    target = galaxy_target(model, seen, lightness, weights)
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
    _record(verdicts, model, weights, kept, saturation, target)
    return faded(ab, lightness, (kept * saturation).view(-1, 1, 1, 1), hint_of(model, target), points=model.point_sources_unshifted)


def _record(verdicts: list[Verdict] | None, model: LoadedModel, weights: torch.Tensor | None, kept: torch.Tensor,
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
                   condition: torch.Tensor | None = None, with_logits: bool = False):
    """(B, 1, H, W) L in [0, 100] -> the raw network output at (H, W): normalised ab or bin logits.

    prepared: L is already what the network sees (network_lightness of the whole image, for tiles).
    condition: a conditioned network's vector for the whole image (judge_frame), so that
    every tile of it is coloured as one survey, with one whole-galaxy view.
    with_logits: also return the survey recogniser's (B, S) logits (None where there are none)."""
    if not prepared:
        lightness = network_lightness(model, lightness)
    height, width = lightness.shape[-2:]
    x = network_input(model, lightness)
    with torch.inference_mode(), autocast(x.device):
        survey = model.survey_weights(x.shape[0], x.device)
        logits = None
        if condition is not None:
            output = model.network(x, condition=condition.to(x.device))
        elif with_logits and recognises_surveys(model):
            output, logits = model.network(x, survey=survey, with_survey_logits=True)
        else:
            output = model.network(x) if survey is None else model.network(x, survey=survey)
    output = output[..., :height, :width].float()
    return (output, None if logits is None else logits.float()) if with_logits else output


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
        for top, band in _blended_bands(model, lambda top, bottom: seen[:, :, top:bottom], height, width, tile, overlap,
                                        condition=judged.condition):
            ab[:, :, top : top + band.shape[2]] = band
    return _finish(shifted(ab, lightness, judged.target, model.point_sources_unshifted), lightness, model, features, judged.weights, judged.target, verdicts)


def _blended_bands(model: LoadedModel, network_rows, height: int, width: int, tile: int, overlap: int,
                   stop: threading.Event | None = None, condition: torch.Tensor | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """(top, (1, 2, rows, W) ab) of consecutive row bands, top to bottom, each as soon as no later
    tile reaches it, so only one row of tiles is ever accumulated. `network_rows(top, bottom)` gives
    the L the network sees, (1, 1, bottom - top, W). Not yet multiplied by colour_factor, which
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
            ab = model.decode(network_output(model, lightness[:, :, :, left:right], prepared=True, condition=condition)).cpu()
            weight = ramp_y * _ramp(right - left, overlap, left > 0, right < width)[None, :]
            total[:, :, top - base : bottom - base, left:right] += ab * weight
            weight_sum[:, :, top - base : bottom - base, left:right] += weight
        final = rows[index + 1] if index + 1 < len(rows) else height  # later tiles start here
        yield base, total[:, :, : final - base] / weight_sum[:, :, : final - base]
        total, weight_sum, base = total[:, :, final - base :].clone(), weight_sum[:, :, final - base :].clone(), final


def lab_bands(model: LoadedModel, rgb_rows, height: int, width: int, tile: int = TILE, overlap: int = 64,
              band: int = 128, stop: threading.Event | None = None, verdicts: list[Verdict] | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Colour an image read row band by row band, for images too large to hold as floats.

    `rgb_rows(top, bottom)` gives float32 sRGB (bottom - top, W, 3) in [0, 1]. Yields (top,
    (1, 3, rows, W) Lab) for consecutive row bands: the input's own L and the ab that
    predict_ab_tiled gives for the whole image, within float16 rounding (0.03 ab) when the
    model's caution must first see every tile. (A band's sRGB -> Lab may round a few pixels'
    L one float32 step away from the whole image's: vectorised pow treats a row's tail apart.)
    Canonical lightness uses one table for the whole image, from histograms summed band by band.
    Setting `stop` (another thread's Ctrl-C) ends it with Stopped before the next tile.
    """

    def user_lightness(top: int, bottom: int) -> torch.Tensor:
        # A few rows at a time: rgb_to_lab's float temporaries are several times the band.
        parts = []
        for start in range(top, bottom, band):
            rgb = torch.from_numpy(np.ascontiguousarray(rgb_rows(start, min(start + band, bottom)))).permute(2, 0, 1)[None]
            with torch.inference_mode():
                parts.append(rgb_to_lab(rgb)[:, :1])
        return torch.cat(parts, dim=2)

    table = None
    if model.config.input_lightness != "raw":
        counts = torch.zeros(TABLE_BINS, dtype=torch.float64)
        for start in range(0, height, 8 * band):
            counts += histogram(user_lightness(start, min(start + 8 * band, height)))
        table = table_from_histogram(counts, model.lightness_reference)
    cached: dict[str, object] = {}

    def network_rows(top: int, bottom: int) -> torch.Tensor:
        lightness = user_lightness(top, bottom)
        cached["top"], cached["lightness"] = top, lightness  # the caller's L for the rows about to be final
        return seen_rows(lightness)

    def seen_rows(lightness: torch.Tensor) -> torch.Tensor:
        return lightness if table is None else apply_table(lightness, table)

    centre_top = max(0, (height - tile) // 2)
    centre = central_part(network_rows(centre_top, min(centre_top + tile, height)), tile)
    judged = judge_frame(model, centre, central_part(cached["lightness"], tile))
    if not model.cautious and judged.target is None:  # the colour is final as soon as each band is
        kept, saturation = strengths(model, None, judged.weights)
        factor = (kept * saturation).view(-1, 1, 1, 1)
        _record(verdicts, model, judged.weights, kept, saturation, None)
        for top, ab in _blended_bands(model, network_rows, height, width, tile, overlap, stop, judged.condition):
            offset = top - cached["top"]
            for start in range(0, ab.shape[2], band):  # a few rows at a time: the consumer's temporaries stay small
                rows = slice(start, min(start + band, ab.shape[2]))
                lightness = cached["lightness"][:, :, offset + rows.start : offset + rows.stop]
                yield top + start, torch.cat([lightness, ab[:, :, rows] * factor], dim=1)
        return
    # Caution and the galaxy-colour shift need every tile before any colour is final: hold ab meanwhile
    # as float16 (half of float32; its rounding, at most 0.03 ab, is far below a visible difference).
    held = torch.empty((1, 2, height, width), dtype=torch.float16)
    ab_sum, weight_sum = torch.zeros(1, 2), torch.zeros(1)
    with watching(model) as features:
        for top, ab in _blended_bands(model, network_rows, height, width, tile, overlap, stop, judged.condition):
            held[:, :, top : top + ab.shape[2]] = ab
            if judged.target is not None:
                offset = top - cached["top"]
                part_sum, part_weight = flux_weighted_sums(cached["lightness"][:, :, offset : offset + ab.shape[2]], ab)
                ab_sum, weight_sum = ab_sum + part_sum, weight_sum + part_weight
    shift = None if judged.target is None else shift_of(ab_sum, weight_sum, tuple(part.cpu() for part in judged.target))
    kept, saturation = strengths(model, features, judged.weights)
    factor, hint = (kept * saturation).view(-1, 1, 1, 1), hint_of(model, judged.target)
    _record(verdicts, model, judged.weights, kept, saturation, judged.target)
    for top in range(0, height, band):
        if stop is not None and stop.is_set():  # the held bands of a large image take seconds too
            raise Stopped("interrupted")
        bottom = min(top + band, height)
        lightness = user_lightness(top, bottom)
        ab = held[:, :, top:bottom].float()
        weight = None
        if shift is not None or hint is not None:  # point sources across the band's edge are judged on rows beyond it
            above, below = max(0, top - POINT_CONTEXT), min(height, bottom + POINT_CONTEXT)
            weight = shift_weight(user_lightness(above, below), model.point_sources_unshifted)[:, :, top - above : top - above + bottom - top]
        if shift is not None:
            ab = apply_shift(ab, lightness, shift, weight)
        yield top, torch.cat([lightness, faded(ab, lightness, factor, None if hint is None else hint.cpu(), weight)], dim=1)


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
