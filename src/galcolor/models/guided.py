"""Reduced-resolution chroma: the U-Net runs at 1/s of the image's side, and this head brings its
prediction back to full resolution, guided by the full-resolution L.

Chroma varies slowly (Zhang et al. 2016 predict it at a quarter of the resolution), but the edges of
star-forming knots and dust lanes do not. The U-Net's last features are upsampled bilinearly and
joined with the full L: a 1x1 convolution of them is exactly the bilinear upsampling of a prediction
at the working resolution (both are linear), plus the full L's own term; then a small full-resolution
net adds a residual from that prediction and L, so colour edges can follow L's edges. Its cost per
pixel is two small 3x3 convolutions instead of a whole U-Net level.

The head takes its input at full resolution, the same (features, L) layout as the plain U-Net's
head, so whatever reads the head's input (error_head.watched) works at either scale.
"""

from __future__ import annotations

import torch
from torch import nn


class GuidedHead(nn.Module):
    """(B, C_in, H, W) upsampled features with the full L as the last channel -> (B, C, H, W).

    conv1x1 -> z; z + (concat(z, L) -> conv3x3 -> ReLU -> conv3x3); then the activation (tanh for
    regression). The residual's last convolution starts at a tenth of PyTorch's default scale, so an
    untrained head is close to plain bilinear upsampling, yet every weight gets a gradient at once.
    """

    def __init__(self, in_channels: int, out_channels: int, bounded: bool, hidden: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        self.refine = nn.Sequential(
            nn.Conv2d(out_channels + 1, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 3, padding=1),
        )
        self.activation = nn.Tanh() if bounded else nn.Identity()
        with torch.no_grad():
            self.refine[-1].weight.mul_(0.1)
            self.refine[-1].bias.zero_()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # features: (B, C_in, H, W), the last channel the full-resolution L
        coarse = self.conv(features)  # (B, C, H, W): smooth, from the working resolution
        lightness = features[:, -1:].to(coarse.dtype)  # (B, 1, H, W)
        return self.activation(coarse + self.refine(torch.cat([coarse, lightness], dim=1)))  # (B, C, H, W)
