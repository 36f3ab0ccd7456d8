"""Colour an image read row band by row band, for images too large to hold as floats: the tiles of
predict.py, handed on band by band, with the whole frame's judgement and caution."""

from __future__ import annotations

import threading
from typing import Iterator

import numpy as np
import torch

from ..color.lab import rgb_to_lab
from ..color.lightness import TABLE_BINS, apply_table, histogram, table_from_histogram
from ..errors import Stopped
from ..models.checkpoint import LoadedModel
from ..models.galaxy_colour import flux_weighted_sums
from .galaxy_colour import POINT_CONTEXT, apply_shift, faded, shift_of, shift_weight
from .predict import TILE, Verdict, blended_bands, central_part, hint_of, judge_frame, record_verdicts, strengths, told_colour, watching


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
        record_verdicts(verdicts, model, judged.weights, kept, saturation, None)
        for top, ab in blended_bands(model, network_rows, height, width, tile, overlap, stop, judged.condition):  # no target: nothing to tell
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
        for top, ab in blended_bands(model, network_rows, height, width, tile, overlap, stop, judged.condition, told_colour(model, judged.target)):
            held[:, :, top : top + ab.shape[2]] = ab
            if judged.target is not None:
                offset = top - cached["top"]
                part_sum, part_weight = flux_weighted_sums(cached["lightness"][:, :, offset : offset + ab.shape[2]], ab)
                ab_sum, weight_sum = ab_sum + part_sum, weight_sum + part_weight
    shift = None if judged.target is None else shift_of(ab_sum, weight_sum, tuple(part.cpu() for part in judged.target))
    kept, saturation = strengths(model, features, judged.weights)
    factor, hint = (kept * saturation).view(-1, 1, 1, 1), hint_of(model, judged.target)
    record_verdicts(verdicts, model, judged.weights, kept, saturation, judged.target)
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
