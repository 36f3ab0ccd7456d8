"""A regression model's expected colour error at inference, read from its error head."""

from __future__ import annotations

import torch

from ..errors import GalcolorError
from ..models.checkpoint import LoadedModel
from ..models.error_head import watched
from .predict import network_output


def expected_error(model: LoadedModel, lightness: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) L -> (B, 1, H, W) the expected length of the ab error, in ab units, on the CPU."""
    if model.error_head is None:
        raise GalcolorError(f"{model.source or 'this model'}: no error head (galcolor fit-uncertainty adds one)")
    return _expected_from(model, *_watched_pass(model, lightness))


def _expected_from(model: LoadedModel, predicted_ab: torch.Tensor, seen: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return 2.0 * model.error_head(seen["last"], seen["context"], predicted_ab)


def _watched_pass(model: LoadedModel, lightness: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The network's own ab (no caution, no saturation) and what the error head reads, all float32 on the CPU."""
    with watched(model.network) as (seen, pooled):
        ab = model.decode(network_output(model, lightness)).float().cpu()
    seen["context"] = pooled.mean()
    height, width = lightness.shape[-2:]
    seen["last"] = seen["last"][..., :height, :width]  # the network saw L padded to its size multiple
    # Clones made outside inference mode: the head's training needs tensors autograd may keep.
    return ab.clone(), {name: value.cpu().clone() for name, value in seen.items()}
