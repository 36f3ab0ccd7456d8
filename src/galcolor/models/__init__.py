"""Colourization networks: each maps normalised L (B, 1, H, W) to normalised ab (B, 2, H, W) in
[-1, 1] (regression head) or to logits over ab bins (B, Q, H, W) (classification head).

Beside them: the model config (config), self-describing safetensors checkpoints (checkpoint), the
heads a trained network gains later (caution, error_head), the adversarial critic (discriminator),
and where networks run (device). A new network goes here. May import: color, io, errors.
"""

from __future__ import annotations

from torch import nn

from .config import ModelConfig
from .seed import SeedColorizer
from .unet import UNetColorizer

ARCHITECTURES = ("seed", "unet")


def build_model(config: ModelConfig) -> nn.Module:
    """Build an untrained network from its config (the config is what checkpoints store)."""
    if config.head == "classify" and config.num_bins < 2:
        raise ValueError("a classify head needs num_bins >= 2 (set from the training data)")
    if config.arch == "seed":
        return SeedColorizer(out_channels=config.out_channels, bounded=config.head == "regress")
    return UNetColorizer(base_width=config.base_width, depth=config.depth, out_channels=config.out_channels,
                         bounded=config.head == "regress", working_scale=config.working_scale,
                         surveys=len(config.surveys), global_pathway=config.global_pathway,
                         global_pooling=config.global_pooling, galaxy_colour=config.galaxy_colour_conditioned)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
