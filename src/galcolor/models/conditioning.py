"""Conditioning the U-Net's decoder on the survey that rendered an image, and on the whole galaxy.

Surveys calibrate colour differently (SDSS gri, DECaLS grz, HST filters), so one network colours
each the way it was trained on, told which survey by a learned embedding per survey. Where the
survey is not given, a recogniser on the bottleneck guesses it, and the embedding is the mix its
probabilities weight. The optional global pathway adds an MLP of the image-averaged bottleneck
features: a whole-galaxy view for the decoder, whose convolutions otherwise see a window of it.

Both feed one conditioning vector, turned into a per-channel scale and shift (FiLM, Perez et al.
2018) of every decoder level: x * (1 + gamma) + beta. The linear maps to gamma and beta start at
zero, so a new conditioned network computes exactly what the unconditioned one does.

A third, optional condition is the galaxy's overall colour (GalaxyColourFiLM): its flux-weighted mean
(a*, b*), which the galaxy-colour stage estimates better from a thumbnail than the U-Net does, or a
user gives. Told the colour, the decoder is left to lay it out: how a galaxy of that colour spreads
it (red bulge, bluer disk, blue knots). It has its own FiLM, applied after the first, so that a
network trained without it gains it with every earlier weight unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class FiLM(nn.Module):
    """(B, C, H, W) features and a (B, D) conditioning vector -> x * (1 + gamma) + beta."""

    def __init__(self, condition_dim: int, channels: int) -> None:
        super().__init__()
        self.to_params = nn.Linear(condition_dim, 2 * channels)
        nn.init.zeros_(self.to_params.weight)
        nn.init.zeros_(self.to_params.bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        """gate: (B, 1) multiplies gamma and beta (0: x unchanged)."""
        params = self.to_params(condition)
        if gate is not None:
            params = params * gate.to(params.dtype)
        gamma, beta = params.to(x.dtype).chunk(2, dim=1)  # (B, C) each
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


GALAXY_COLOUR_SCALE = 20.0  # ab units: galaxies' mean a*, b* lie within a few tens, so inputs are near 1


def galaxy_colour_input(colour: torch.Tensor | None, known: torch.Tensor | None = None) -> torch.Tensor | None:
    """(B, 2) mean (a*, b*) in ab units and (B,) how far it is known (1 known, 0 unknown; between:
    trusted in part) -> the (B, 3) input of GalaxyColourFiLM; None (unknown for every image) stays None."""
    if colour is None:
        return None
    known = torch.ones_like(colour[:, 0]) if known is None else known.to(colour.device, colour.dtype)
    return torch.cat([colour.float() / GALAXY_COLOUR_SCALE * known.float()[:, None], known.float()[:, None]], dim=1)


class GalaxyColourFiLM(nn.Module):
    """(B, 3) galaxy colour input (galaxy_colour_input) -> FiLM of each decoder level, through a small MLP
    so that the scale and shift need not be linear in the colour. Gated by how far the colour is known:
    a network told nothing (or a colour of trust 0) computes exactly what it did without this module,
    so images whose colour is not known, such as a survey the stage is not trusted on, keep the colour
    of the network it was grown from."""

    def __init__(self, level_channels: list[int], hidden: int = 32) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(inplace=True))
        self.films = nn.ModuleList(FiLM(hidden, channels) for channels in level_channels)

    def modulation(self, colour: torch.Tensor | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
        """((B, hidden) the colour's embedding, (B, 1) its gate) for `modulate`; None: told nothing."""
        if colour is None:
            return None
        colour = colour.float().to(device)
        return self.embed(colour), colour[:, 2:3]

    def modulate(self, level: int, x: torch.Tensor, modulation: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        return x if modulation is None else self.films[level](x, modulation[0], gate=modulation[1])


def pool(features: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, h, w) features -> (B, C): their mean over the image, each position weighted by the
    (B, 1, h, w) weights where given."""
    if weights is None:
        return features.float().mean(dim=(2, 3))
    weights = weights.float()
    return (features.float() * weights).sum(dim=(2, 3)) / weights.sum(dim=(2, 3)).clamp_min(1e-12)


class Conditioning(nn.Module):
    """Survey embedding, survey recogniser and global pathway over the pooled bottleneck, and the
    FiLM of each decoder level.

    bottleneck_channels: channels of the U-Net's deepest encoder level; level_channels: channels of
    each decoder level's output, in the order the decoder runs.
    """

    def __init__(self, bottleneck_channels: int, level_channels: list[int], surveys: int, global_pathway: bool,
                 embedding_dim: int = 8, global_dim: int = 16, hidden: int = 32) -> None:
        super().__init__()
        if surveys < 0 or (surveys == 0 and not global_pathway):
            raise ValueError("conditioning needs at least one survey or the global pathway")
        self.surveys = surveys
        if surveys:
            self.survey_embedding = nn.Parameter(torch.randn(surveys, embedding_dim))  # (S, E), as nn.Embedding
            self.recogniser = nn.Sequential(nn.Linear(bottleneck_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, surveys))
        if global_pathway:
            self.global_mlp = nn.Sequential(nn.Linear(bottleneck_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, global_dim))
        condition_dim = (embedding_dim if surveys else 0) + (global_dim if global_pathway else 0)
        self.films = nn.ModuleList(FiLM(condition_dim, channels) for channels in level_channels)

    def forward(self, bottleneck: torch.Tensor, survey: torch.Tensor | None = None,
                weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, C, h, w) bottleneck features, optional (B, S) survey weights and optional (B, 1, h, w)
        pooling weights (None: every position alike) -> the (B, D) conditioning vector and the
        recogniser's (B, S) logits (None without surveys)."""
        pooled = pool(bottleneck, weights)  # (B, C): the whole image's view
        parts, logits = [], None
        if self.surveys:
            logits = self.recogniser(pooled)  # (B, S)
            if survey is None:
                # Detached: the weights stay the recogniser's estimate of which survey this is,
                # trained by the cross-entropy alone, rather than a free code the colour loss bends.
                survey = torch.softmax(logits.detach().float(), dim=1)
            elif survey.ndim != 2 or survey.shape[1] != self.surveys:
                raise ValueError(f"survey weights must have shape (B, {self.surveys}), got {tuple(survey.shape)}")
            parts.append(survey.to(self.survey_embedding.dtype) @ self.survey_embedding)  # (B, E)
        elif survey is not None:
            raise ValueError("this network was built without surveys; pass survey=None")
        if hasattr(self, "global_mlp"):
            parts.append(self.global_mlp(pooled))  # (B, G)
        return torch.cat(parts, dim=1), logits
