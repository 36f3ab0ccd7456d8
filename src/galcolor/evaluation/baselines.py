"""The two baselines every figure stands beside: `gray` (ab = 0) and `lut` (mean ab per L)."""

from __future__ import annotations

import torch


def gray_ab(lightness: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) L -> (B, 2, H, W) zeros: leaving the image grey."""
    return torch.zeros_like(lightness).expand(-1, 2, -1, -1).contiguous()


def lut_ab(lightness: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) L -> (B, 2, H, W) the training split's mean ab at that (integer) L."""
    index = lightness[:, 0].round().clamp(0, table.shape[0] - 1).long()  # (B, H, W)
    return table.to(lightness.device)[index].permute(0, 3, 1, 2).contiguous()
