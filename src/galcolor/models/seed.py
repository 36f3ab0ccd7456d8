"""The encoder-decoder of the study galcolor grew from, rebuilt faithfully as a baseline.

3x3 convolutions 16-32-64-128-256 with batch norm and LeakyReLU, two 2x2 max-pools, two 2x
upsamplings back, the input L concatenated before the head, and a 2-channel tanh ab head.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn_act(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.2, inplace=True),
    )


class SeedColorizer(nn.Module):
    def __init__(self, out_channels: int = 2, bounded: bool = True) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            _conv_bn_act(1, 16),
            _conv_bn_act(16, 32),
            nn.MaxPool2d(2),  # H/2
            _conv_bn_act(32, 64),
            _conv_bn_act(64, 128),
            nn.MaxPool2d(2),  # H/4
            _conv_bn_act(128, 256),
        )
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),  # H/2
            _conv_bn_act(256, 128),
            _conv_bn_act(128, 64),
            nn.Upsample(scale_factor=2, mode="nearest"),  # H
            _conv_bn_act(64, 32),
        )
        # tanh for the study's ab regression; raw logits when the head classifies ab bins
        self.head = nn.Sequential(nn.Conv2d(32 + 1, out_channels, 3, padding=1), nn.Tanh() if bounded else nn.Identity())

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        # lightness: (B, 1, H, W) in [0, 1], H and W multiples of 4
        features = self.decoder(self.encoder(lightness))  # (B, 32, H, W)
        return self.head(torch.cat([features, lightness], dim=1))  # (B, 2, H, W) in [-1, 1], or (B, Q, H, W) logits
