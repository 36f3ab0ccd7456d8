"""sRGB <-> CIELAB (D65), batched and differentiable, and the scaling the networks see.

The conversion itself is kornia's (a maintained, differentiable implementation); this module only
fixes the layout and the normalisation constants, defined once for the whole package.
"""

from __future__ import annotations

import numpy as np
import torch
from kornia.color import lab_to_rgb as _kornia_lab_to_rgb
from kornia.color import rgb_to_lab as _kornia_rgb_to_lab

L_MAX = 100.0
# Galaxy chroma stays well inside |a|,|b| < 110; the tanh head is scaled to this range.
AB_SCALE = 110.0


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 3, H, W) Lab with L in [0, 100]."""
    return _kornia_rgb_to_lab(rgb.clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) Lab -> (B, 3, H, W) sRGB clipped to [0, 1]."""
    return _kornia_lab_to_rgb(lab, clip=True)


def fit_chroma_to_gamut(lab: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """Shrink each out-of-gamut pixel's ab towards grey, keeping L and hue, until it fits sRGB.

    Clipping R, G and B one by one would change the lightness the user gave us; grey (ab = 0)
    always fits, so a bisection on the chroma scale finds the most saturated colour that does.
    """
    lightness, ab = lab[:, :1], lab[:, 1:]

    def fits(scale: torch.Tensor) -> torch.Tensor:
        rgb = _kornia_lab_to_rgb(torch.cat([lightness, ab * scale], dim=1), clip=False)
        return ((rgb >= -1e-4) & (rgb <= 1 + 1e-4)).all(dim=1, keepdim=True)

    low, high = torch.zeros_like(lightness), torch.ones_like(lightness)
    inside = fits(high)
    if bool(inside.all()):
        return lab
    for _ in range(steps):
        middle = (low + high) / 2
        ok = fits(middle)
        low, high = torch.where(ok, middle, low), torch.where(ok, high, middle)
    scale = torch.where(inside, torch.ones_like(low), low)
    return torch.cat([lightness, ab * scale], dim=1)


def normalise_lightness(lightness: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> network input in [0, 1]."""
    return lightness / L_MAX


def normalise_ab(ab: torch.Tensor) -> torch.Tensor:
    return ab / AB_SCALE


def denormalise_ab(ab_normalised: torch.Tensor) -> torch.Tensor:
    return ab_normalised * AB_SCALE


def rgb_array_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float sRGB in [0, 1] -> (H, W, 3) float32 Lab, via the same torch path."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        return rgb_to_lab(tensor)[0].permute(1, 2, 0).numpy()


def lab_array_to_rgb8(lab: np.ndarray) -> np.ndarray:
    """(H, W, 3) Lab -> (H, W, 3) uint8 sRGB, out-of-gamut chroma reduced so L is kept."""
    tensor = torch.from_numpy(np.ascontiguousarray(lab, dtype=np.float32)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        rgb = lab_to_rgb(fit_chroma_to_gamut(tensor))[0].permute(1, 2, 0).numpy()
    return np.round(rgb * 255.0).astype(np.uint8)
