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


# kornia's Lab -> XYZ -> linear RGB constants (D65), repeated so the gamut test can skip the sRGB curve.
_WHITE = (0.95047, 1.0, 1.08883)
_XYZ_TO_LINEAR_RGB = (
    (3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
    (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
    (0.0556466391351772, -0.2040413383665112, 1.0573110696453443),
)
# sRGB's transfer curve rises monotonically, so "sRGB within [-1e-4, 1 + 1e-4]" is a range of linear
# RGB: testing that range needs no pow, the costliest step of a full Lab -> sRGB conversion.
_LINEAR_LOW = -1e-4 / 12.92
_LINEAR_HIGH = ((1.0 + 1e-4 + 0.055) / 1.055) ** 2.4


_F_KNEE = 0.2068966  # kornia's knee of f^-1: its linear part is the cubic's tangent there


def _inverse_f(f: torch.Tensor) -> torch.Tensor:
    """CIELAB's f^-1 as kornia computes it: f^3 above the knee, the tangent line below. Written
    without torch.where, which costs as much as twenty multiplications on the CPU; the two parts
    meet at the knee (to 5e-8), so each can take the other's side at its value there."""
    cubic = f.clamp(min=_F_KNEE)
    line = f.clamp(max=_F_KNEE)
    return cubic * cubic * cubic + (line - 4.0 / 29.0) / 7.787 - (_F_KNEE - 4.0 / 29.0) / 7.787


def luminance_of_lightness(lab_l: torch.Tensor) -> torch.Tensor:
    """CIE relative luminance Y (0..1) of lightness L* (0..100), as kornia's Lab -> XYZ gives it."""
    return _inverse_f((lab_l + 16.0) / 116.0)


class _GamutTest:
    """How far L, a*s, b*s lies outside sRGB (<= 0: inside, to 1e-4), for many chroma scales s
    of fixed L, a, b (flat tensors).

    Y depends on L alone, so its share of linear RGB is computed once; each test then needs only
    X and Z, by kornia's own Lab -> XYZ formula (Z's f clamped at 0 as kornia does). Testing
    linear RGB needs no sRGB curve: the curve rises monotonically, so "sRGB within [-1e-4,
    1 + 1e-4]" is a range of linear RGB."""

    def __init__(self, lightness: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
        matrix = [[value * white for value, white in zip(row, _WHITE)] for row in _XYZ_TO_LINEAR_RGB]
        self.fy, self.a, self.b = (lightness + 16.0) / 116.0, a / 500.0, b / 200.0
        y = _inverse_f(self.fy)
        self.rows = [(row[0], row[1] * y, row[2]) for row in matrix]

    def excess(self, scale: torch.Tensor | float) -> torch.Tensor:
        x = _inverse_f(self.fy + self.a * scale)
        z = _inverse_f((self.fy - self.b * scale).clamp(min=0.0))
        red, green, blue = (x * from_x + from_y + z * from_z for from_x, from_y, from_z in self.rows)
        lowest, highest = torch.minimum(torch.minimum(red, green), blue), torch.maximum(torch.maximum(red, green), blue)
        return torch.maximum(_LINEAR_LOW - lowest, highest - _LINEAR_HIGH)


def fit_chroma_to_gamut(lab: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """Shrink each out-of-gamut pixel's ab towards grey, keeping L and hue, until it fits sRGB.

    Clipping R, G and B one by one would change the lightness the user gave us; grey (ab = 0)
    always fits, so a bisection on the chroma scale finds the most saturated colour that does.
    Only the pixels outside the gamut take part in the bisection (on galaxy images most of the
    frame is near-grey sky), and each step tests linear RGB, without the sRGB curve.
    """
    lightness, ab = lab[:, :1], lab[:, 1:]
    flat_l = lightness.reshape(-1)
    flat_a, flat_b = ab[:, 0].reshape(-1), ab[:, 1].reshape(-1)
    outside = torch.nonzero(_GamutTest(flat_l, flat_a, flat_b).excess(1.0) > 0).squeeze(1)
    if outside.numel() == 0:
        return lab
    test = _GamutTest(flat_l[outside], flat_a[outside], flat_b[outside])
    low, step = torch.zeros_like(test.fy), 1.0
    for _ in range(steps):
        step /= 2
        # Scales are multiples of a power of two, so low + step is exact: the same middles as
        # (low + high) / 2, and a fit moves low up by exactly step.
        fits = (test.excess(low + step) <= 0).to(low.dtype)
        low = low + fits * step
    scale = torch.ones_like(flat_l)
    scale[outside] = low
    return torch.cat([lightness, ab * scale.view_as(lightness)], dim=1)


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
