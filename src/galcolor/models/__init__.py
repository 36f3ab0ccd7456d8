"""Colourization networks: each maps normalised L (B, 1, H, W) to normalised ab (B, 2, H, W)."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from .seed import SeedColorizer
from .unet import UNetColorizer

ARCHITECTURES = ("seed", "unet")


def build_model(config: ModelConfig) -> nn.Module:
    """Build an untrained network from its config (the config is what checkpoints store)."""
    if config.arch == "seed":
        return SeedColorizer()
    if config.arch == "unet":
        return UNetColorizer(base_width=config.base_width, depth=config.depth)
    raise ValueError(f"unknown architecture {config.arch!r}; choose from {ARCHITECTURES}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
