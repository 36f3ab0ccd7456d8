"""Colourize L at full resolution: pad to what the network needs, predict ab, keep the user's L."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .checkpoint import LoadedModel
from .color import normalise_lightness, rgb_to_lab
from .device import autocast

TILE = 1024  # images with a side above this are coloured in overlapping tiles of this size


def predict_ab(model: LoadedModel, lightness: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) L in [0, 100] -> (B, 2, H, W) predicted ab, on the model's device."""
    return model.decode(network_output(model, lightness))


def network_output(model: LoadedModel, lightness: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) L in [0, 100] -> the raw network output at (H, W): normalised ab or bin logits."""
    device = next(model.network.parameters()).device
    multiple = model.config.size_multiple
    height, width = lightness.shape[-2:]
    pad_bottom, pad_right = (-height) % multiple, (-width) % multiple
    # Zero padding is black sky, what surrounds a galaxy anyway.
    x = F.pad(normalise_lightness(lightness.to(device, torch.float32)), (0, pad_right, 0, pad_bottom))  # float64 would break autocast
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast(device):
        output = model.network(x)
    return output[..., :height, :width].float()


def colorize_tensor(model: LoadedModel, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) sRGB in [0, 1] (grey or colour) -> (predicted Lab, input Lab), both (B, 3, H, W).

    The prediction keeps the input's own L exactly; only a and b come from the network.
    """
    device = next(model.network.parameters()).device
    with torch.inference_mode():
        input_lab = rgb_to_lab(rgb.to(device))
        ab = predict_ab(model, input_lab[:, :1])
        return torch.cat([input_lab[:, :1], ab], dim=1), input_lab


def predict_ab_tiled(model: LoadedModel, lightness: torch.Tensor, tile: int = TILE, overlap: int = 64) -> torch.Tensor:
    """Like predict_ab for one image of any size, in overlapping tiles blended with linear ramps.

    Memory is bounded by the tile, not the image. Weights fall to near zero at a tile's inner edges,
    so neighbouring tiles hand over smoothly and no seam shows. Returns (1, 2, H, W) ab on the CPU.
    """
    _, _, height, width = lightness.shape
    if height <= tile and width <= tile:
        return predict_ab(model, lightness).cpu()
    step = tile - overlap
    total = torch.zeros((1, 2, height, width))
    weight_sum = torch.zeros((1, 1, height, width))
    for top in _tile_starts(height, tile, step):
        for left in _tile_starts(width, tile, step):
            bottom, right = min(top + tile, height), min(left + tile, width)
            ab = predict_ab(model, lightness[:, :, top:bottom, left:right]).cpu()
            weight = _ramp(bottom - top, overlap, top > 0, bottom < height)[:, None] * _ramp(
                right - left, overlap, left > 0, right < width
            )[None, :]
            total[:, :, top:bottom, left:right] += ab * weight
            weight_sum[:, :, top:bottom, left:right] += weight
    return total / weight_sum


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
