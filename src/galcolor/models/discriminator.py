"""pix2pix's PatchGAN discriminator (Isola et al. 2017) on (L, a, b): it judges whether each
~70-pixel patch's colour is plausible for its lightness, which pushes a colourizer away from the
dull average that a pixel-wise loss rewards."""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()

        def block(in_channels: int, out_channels: int, stride: int, norm: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, stride, 1, bias=not norm)]
            if norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.net = nn.Sequential(
            *block(3, width, 2, norm=False),  # (B, w, H/2, W/2)
            *block(width, 2 * width, 2),  # (B, 2w, H/4, W/4)
            *block(2 * width, 4 * width, 2),  # (B, 4w, H/8, W/8)
            *block(4 * width, 4 * width, 1),
            nn.Conv2d(4 * width, 1, 4, 1, 1),  # (B, 1, ~H/8, ~W/8) real/fake logits per patch
        )

    def forward(self, lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        # lightness (B, 1, H, W) in [0, 1]; ab (B, 2, H, W) normalised to about [-1, 1]
        return self.net(torch.cat([lightness, ab], dim=1))
