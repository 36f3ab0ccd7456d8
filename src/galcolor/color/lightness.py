"""Stretch-invariant lightness: map any image's L onto the training set's canonical scale.

How an image was stretched (linear, gamma, asinh, a gain, a sky offset) is a choice of whoever made
it, not a property of the galaxy, so the network should not see it. Every monotonic stretch keeps
the order of the pixels, so a mapping built from ranks alone cannot depend on it: each pixel's rank
in its own image is read off the training set's pooled lightness distribution (histogram matching).

A first version split each frame into sky and signal at sky + 3 sigma before ranking, to keep a
galaxy's apparent size; the split itself moved with the stretch (the noise of a clipped sky changes
shape under a gamma), and the result was less invariant than plain ranks, so it was dropped.

The mapping is a look-up table over L, built once per image: a tiled or streamed image uses one
table for every tile, so tiles agree.
"""

from __future__ import annotations

import numpy as np
import torch

REFERENCE_QUANTILES = 256
TABLE_BINS = 4096  # L resolution of the mapping: 100 / 4096 = 0.024, finer than 8-bit input steps


def reference_from(lightness_maps) -> torch.Tensor:
    """(REFERENCE_QUANTILES,) quantiles of the pooled L of training images (each any shape)."""
    counts = torch.zeros(TABLE_BINS, dtype=torch.float64)
    for lightness in lightness_maps:
        counts += histogram(lightness)
    if counts.sum() == 0:
        raise ValueError("no pixels to define a lightness scale")
    cumulative = torch.cumsum(counts, 0) / counts.sum()
    upper_edges = torch.arange(1, TABLE_BINS + 1, dtype=torch.float64) * (100.0 / TABLE_BINS)
    # The quantile of probability p is the upper edge of the first bin whose cumulative share reaches p.
    index = torch.searchsorted(cumulative, torch.from_numpy(_levels(REFERENCE_QUANTILES))).clamp(max=TABLE_BINS - 1)
    return upper_edges[index].float()


def histogram(lightness: torch.Tensor) -> torch.Tensor:
    """(TABLE_BINS,) float64 pixel counts of L; add them up to build a table for a streamed image."""
    flat = lightness.detach().flatten().float().clamp(0.0, 100.0)
    return torch.bincount(_bin_of(flat), minlength=TABLE_BINS).double().cpu()


def table_from_histogram(counts: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(TABLE_BINS,) canonical L for each L bin: the bin's mid-rank in the image (ties share a rank)
    read off the reference quantiles."""
    total = counts.sum()
    if total == 0:
        return torch.full((TABLE_BINS,), float(reference[len(reference) // 2]))
    mid_rank = (torch.cumsum(counts, 0) - counts / 2.0) / total
    mapped = np.interp(mid_rank.numpy(), _levels(len(reference)), reference.double().numpy())
    return torch.from_numpy(mapped).float()


def mapping_table(lightness: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return table_from_histogram(histogram(lightness), reference)


def apply_table(lightness: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """L of any shape -> canonical L of the same shape, on the same device."""
    return table.to(lightness.device)[_bin_of(lightness.clamp(0.0, 100.0))]


def canonical_lightness(lightness: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) L -> canonical L, each image mapped by its own table."""
    return torch.stack([apply_table(image, mapping_table(image, reference)) for image in lightness])


def _levels(count: int) -> np.ndarray:
    """Mid-point probability levels: the extreme pixels of a few training frames do not set the ends."""
    return (np.arange(count) + 0.5) / count


def _bin_of(lightness: torch.Tensor) -> torch.Tensor:
    return (lightness * (TABLE_BINS / 100.0)).long().clamp_(0, TABLE_BINS - 1)
