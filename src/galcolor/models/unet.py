"""A U-Net colourizer with configurable width and depth (the default shipped architecture)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DoubleConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Bilinear 2x upsampling, then a double conv over the upsampled map joined with the skip."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = DoubleConv(in_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], dim=1))


class UNetColorizer(nn.Module):
    """Widths double at each of `depth` downsamplings: base_width * 2**level."""

    def __init__(self, base_width: int = 32, depth: int = 4, out_channels: int = 2, bounded: bool = True) -> None:
        super().__init__()
        if depth < 1 or base_width < 4:
            raise ValueError("U-Net needs depth >= 1 and base_width >= 4")
        widths = [base_width * 2**level for level in range(depth + 1)]
        self.depth = depth
        self.stem = DoubleConv(1, widths[0])
        self.downs = nn.ModuleList(DoubleConv(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(
            Up(widths[i + 1], widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.head = nn.Sequential(nn.Conv2d(widths[0] + 1, out_channels, 1), nn.Tanh() if bounded else nn.Identity())

    @property
    def size_multiple(self) -> int:
        return 2**self.depth

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        # lightness: (B, 1, H, W) in [0, 1]; H, W multiples of 2**depth
        skips = [self.stem(lightness)]  # (B, w0, H, W)
        for down in self.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))  # (B, w_i, H/2^i, W/2^i)
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(torch.cat([x, lightness], dim=1))  # (B, 2, H, W) in [-1, 1], or (B, Q, H, W) logits
