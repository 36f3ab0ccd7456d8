"""Training augmentation that imitates other instruments and renderings.

Another telescope sees the same galaxy through another PSF, at another pixel scale, with another
noise and sky level, and whoever renders it picks another stretch, clips the core, and saves a
JPEG. The lightness the network sees gets all of these. The colour target gets only what
moves or blurs light on the sky (PSF, resolution, scale), so L and ab stay aligned pixel for pixel;
it keeps its SDSS rendering, because colour style is chosen at inference (see style.py), not guessed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


@dataclass(frozen=True)
class InstrumentDraw:
    """One imitated instrument and rendering, drawn per training image."""

    scale: float = 1.0  # >1 zooms in (a finer pixel scale)
    blur_sigma: float = 0.0  # PSF, in pixels
    downsample: float = 1.0  # resolution loss: down by this factor and back up
    gamma: float = 1.0  # the rendering's stretch, applied to L / 100
    gain: float = 1.0  # then clipped at 100: saturated cores
    sky_offset: float = 0.0  # L units
    noise_sigma: float = 0.0  # L units
    jpeg_quality: int = 0  # 0: no JPEG round trip

    @property
    def is_identity(self) -> bool:
        return self == InstrumentDraw()


@dataclass(frozen=True)
class InstrumentAugmentation:
    """Ranges of the draws; `clean_share` of images are left as they are so SDSS itself stays sharp."""

    clean_share: float = 0.35
    scale: tuple[float, float] = (0.75, 1.35)
    blur_sigma: tuple[float, float] = (0.0, 1.5)
    downsample: tuple[float, float] = (1.0, 2.5)
    gamma: tuple[float, float] = (0.5, 2.0)
    gain: tuple[float, float] = (0.8, 2.0)
    sky_offset: tuple[float, float] = (0.0, 8.0)
    noise_sigma: tuple[float, float] = (0.0, 4.0)
    jpeg_share: float = 0.25
    jpeg_quality: tuple[int, int] = (20, 85)

    def draw(self, generator: torch.Generator) -> InstrumentDraw:
        """Each effect is present in half of the augmented images (JPEG in jpeg_share), at a uniform strength in its range."""
        u = torch.rand(17, generator=generator).tolist()
        if u[0] < self.clean_share:
            return InstrumentDraw()
        present = [x < 0.5 for x in u[1:8]] + [u[8] < self.jpeg_share]
        strength = u[9:17]

        def value(index: int, bounds: tuple[float, float], off: float) -> float:
            return bounds[0] + (bounds[1] - bounds[0]) * strength[index] if present[index] else off

        log_gamma = (np.log(self.gamma[0]), np.log(self.gamma[1]))
        return InstrumentDraw(
            scale=value(0, self.scale, 1.0),
            blur_sigma=value(1, self.blur_sigma, 0.0),
            downsample=value(2, self.downsample, 1.0),
            gamma=float(np.exp(value(3, log_gamma, 0.0))),
            gain=value(4, self.gain, 1.0),
            sky_offset=value(5, self.sky_offset, 0.0),
            noise_sigma=value(6, self.noise_sigma, 0.0),
            jpeg_quality=int(value(7, self.jpeg_quality, 0)),
        )


def imitate(lightness: torch.Tensor, ab: torch.Tensor, draw: InstrumentDraw, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(1, H, W) L and (2, H, W) ab of one image -> (L as `draw`'s instrument and rendering show it,
    the true L and ab after that instrument's optics only). Shapes are kept; L stays in [0, 100]."""
    if draw.is_identity:
        return lightness, lightness, ab
    both = optical(torch.cat([lightness, ab], dim=0)[None], draw)[0]  # geometry moves L and ab together
    return photometric(both[:1], draw, generator), both[:1], both[1:]


def optical(image: torch.Tensor, draw: InstrumentDraw) -> torch.Tensor:
    """(B, C, H, W) -> the same size after a change of pixel scale, a PSF and a loss of resolution."""
    height, width = image.shape[-2:]
    if draw.scale != 1.0:
        zoomed = F.interpolate(image, scale_factor=draw.scale, mode="bilinear", align_corners=False)
        image = _centre_fit(zoomed, height, width)
    if draw.blur_sigma > 0.05:
        image = gaussian_blur(image, draw.blur_sigma)
    if draw.downsample > 1.05:
        small = F.interpolate(image, scale_factor=1.0 / draw.downsample, mode="area")
        image = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
    return image


def photometric(lightness: torch.Tensor, draw: InstrumentDraw, generator: torch.Generator) -> torch.Tensor:
    """(1, H, W) L -> L as another rendering would show it: stretch, gain with clipping, sky, noise, JPEG."""
    scaled = (lightness / 100.0).clamp(0.0, 1.0) ** draw.gamma
    scaled = (scaled * draw.gain + draw.sky_offset / 100.0).clamp(0.0, 1.0)
    if draw.noise_sigma > 0:
        noise = torch.randn(scaled.shape, generator=generator) * (draw.noise_sigma / 100.0)
        scaled = (scaled + noise).clamp(0.0, 1.0)
    if draw.jpeg_quality:
        scaled = _jpeg_round_trip(scaled, draw.jpeg_quality)
    return scaled * 100.0


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = image.shape[1]
    padded = F.pad(image, (radius, radius, radius, radius), mode="reflect")
    horizontal = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(horizontal, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def _centre_fit(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop or pad (with black sky) around the centre to (height, width)."""
    _, _, h, w = image.shape
    if h >= height:
        top = (h - height) // 2
        image = image[:, :, top : top + height]
    if w >= width:
        left = (w - width) // 2
        image = image[:, :, :, left : left + width]
    _, _, h, w = image.shape
    if h < height or w < width:
        pad_top, pad_left = (height - h) // 2, (width - w) // 2
        image = F.pad(image, (pad_left, width - w - pad_left, pad_top, height - h - pad_top))
    return image


def _jpeg_round_trip(scaled: torch.Tensor, quality: int) -> torch.Tensor:
    pixels = (scaled[0].numpy() * 255.0 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255.0
    return torch.from_numpy(decoded.copy())[None]
