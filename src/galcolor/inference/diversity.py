"""Several plausible colourings from a classification model, and how unsure the colour is.

A classify head gives a distribution over ab bins at every pixel. Sampling each pixel on its own
gives speckle; instead every sample draws one Gumbel noise field per bin that is *smooth in space*
(Gaussian-blurred white noise, rescaled to unit variance, mapped to Gumbel through the normal
CDF). Each pixel's marginal is then still a draw from its own distribution (the Gumbel-max
trick), but neighbouring pixels share their draw, so a sample picks one coherent reading of a
region (say, a blue arm or a yellow one) rather than a mixture of both.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..models.checkpoint import LoadedModel
from ..errors import GalcolorError
from .predict import TILE, network_output

CORRELATION_PIXELS = 12.0  # standard deviation of the blur that makes the noise smooth
SOFTNESS = 0.5  # Gumbel-softmax temperature: 0 picks one bin per pixel, 1 mixes neighbours


def require_distribution(model: LoadedModel) -> None:
    if model.bins is None:
        source = model.source or "this model"
        raise GalcolorError(f"{source}: --samples needs a classification model (train --head classify)")


def require_uncertainty(model: LoadedModel) -> None:
    if not model.has_uncertainty:
        source = model.source or "this model"
        raise GalcolorError(f"{source}: --uncertainty needs a classification model or an error head (galcolor fit-uncertainty)")


def smooth_gumbel(shape: tuple[int, ...], generator: torch.Generator, sigma: float = CORRELATION_PIXELS) -> torch.Tensor:
    """(B, Q, H, W) Gumbel(0, 1) noise whose field is correlated over about sigma pixels."""
    white = torch.randn(shape, generator=generator)
    radius = max(1, int(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.norm()  # unit L2 norm: a blurred unit-variance field keeps variance 1
    channels = shape[1]
    flat = white.reshape(-1, 1, *shape[2:])
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect" if shape[3] > radius else "replicate"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect" if shape[2] > radius else "replicate"), kernel.view(1, 1, -1, 1))
    normal = flat.reshape(shape[0], channels, *shape[2:])
    uniform = (0.5 * (1 + torch.erf(normal / math.sqrt(2)))).clamp(1e-6, 1 - 1e-6)
    return -torch.log(-torch.log(uniform))


def sample_ab(
    model: LoadedModel, lightness: torch.Tensor, count: int, seed: int = 0, correlation: float = CORRELATION_PIXELS,
    temperature: float = 1.0,
) -> list[torch.Tensor]:
    """`count` colourings of (B, 1, H, W) L, each (B, 2, H, W) ab on the CPU, drawn from the
    distribution sharpened by `temperature` (1: as trained; below 1: narrower, nearer the mode)."""
    require_distribution(model)
    if not temperature > 0:
        raise GalcolorError(f"the sample temperature must be positive, got {temperature}")
    logits = network_output(model, lightness).cpu()
    # Not the model's annealed-mean temperature: that serves the single best guess and, as low as
    # it is chosen, would collapse every sample onto the mode.
    log_p = torch.log_softmax(logits / temperature, dim=1)
    generator = torch.Generator().manual_seed(seed)
    centres = model.bins.centres.float()
    samples = []
    for _ in range(count):
        weights = torch.softmax((log_p + smooth_gumbel(tuple(logits.shape), generator, correlation)) / SOFTNESS, dim=1)
        samples.append(torch.einsum("bqhw,qc->bchw", weights, centres))
    return samples


def uncertainty(model: LoadedModel, lightness: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) L -> (B, 1, H, W) how unsure the colour is, in ab units: a classifier's spread
    (standard deviation of its distribution), or a regression model's expected error from its error head."""
    require_uncertainty(model)
    if model.bins is None:
        from .expected_error import expected_error

        return expected_error(model, lightness)
    return model.bins.spread(network_output(model, lightness)).cpu()


# ab units at the top of the uncertainty colour map: fixed per kind of map, so that one model's maps
# compare. A classifier's spread reaches 23-48 on SDSS galaxies; an error head's expected error
# 1 (sky) to about 15, so on the spread's scale its maps came out nearly black.
SPREAD_SCALE = 40.0
EXPECTED_ERROR_SCALE = 20.0


def uncertainty_scale(model: LoadedModel) -> float:
    """The ab value that the top of `model`'s uncertainty colour map stands for."""
    return SPREAD_SCALE if model.bins is not None else EXPECTED_ERROR_SCALE


def uncertainty_legend(model: LoadedModel) -> str:
    """What `model`'s uncertainty map shows and on what scale, in a sentence for a reader of the map."""
    meaning = "the spread of its colour distribution" if model.bins is not None else "the expected error of its colour"
    return f"The uncertainty map shows {meaning}, from 0 (dark) to {uncertainty_scale(model):g} ab or more (bright)"


def extra_outputs(model: LoadedModel, lab: np.ndarray, samples: int, want_uncertainty: bool, seed: int,
                  sample_temperature: float = 1.0) -> dict[str, np.ndarray]:
    """For one coloured image (H, W, 3 Lab): {file suffix: array} of its samples and uncertainty.

    '.sample-K.png' are uint8 RGB colourings, '.uncertainty.png' a uint8 RGB map (magma, 0 to
    uncertainty_scale(model) ab units), '.uncertainty.npy' the raw float32 values in ab units.
    """
    from matplotlib import colormaps

    from ..color.lab import lab_array_to_rgb8

    if samples:
        require_distribution(model)
    if want_uncertainty:
        require_uncertainty(model)
    if max(lab.shape[:2]) > TILE:  # the per-bin distribution of a larger image would not fit in memory
        raise GalcolorError(f"--samples and --uncertainty work on images up to {TILE} px a side")
    lightness = torch.from_numpy(np.ascontiguousarray(lab[..., 0], dtype=np.float32))[None, None]
    outputs: dict[str, np.ndarray] = {}
    if samples:
        for index, ab in enumerate(sample_ab(model, lightness, samples, seed, temperature=sample_temperature), start=1):
            sampled = np.concatenate([lab[..., :1], ab[0].permute(1, 2, 0).numpy()], axis=2)
            outputs[f".sample-{index}.png"] = lab_array_to_rgb8(sampled)
    if want_uncertainty:
        spread = uncertainty(model, lightness)[0, 0].numpy().astype(np.float32)
        outputs[".uncertainty.npy"] = spread
        rgba = colormaps["magma"](np.clip(spread / uncertainty_scale(model), 0.0, 1.0))
        outputs[".uncertainty.png"] = (rgba[..., :3] * 255).round().astype(np.uint8)
    return outputs
