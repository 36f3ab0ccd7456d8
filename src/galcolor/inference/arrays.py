"""Colouring in-memory images: any numpy/PIL/torch image to float sRGB, then to predicted Lab at full size."""

from __future__ import annotations

import sys

import numpy as np
import torch

from ..color.lab import rgb_to_lab
from ..errors import GalcolorError
from ..io.decode import linear_lightness, pil_to_rgb
from ..models.checkpoint import LoadedModel
from .predict import TILE, Verdict, predict_ab, predict_ab_tiled


def as_rgb_float(image) -> np.ndarray:
    """A PIL image or numpy array (grey (H, W) / (H, W, 1), RGB, RGBA; uint8, uint16 or float in
    [0, 1]) -> float32 (H, W, 3) sRGB in [0, 1]. Alpha is composited on black sky.

    A grey float array beyond [0, 1] is linear data (counts or fluxes, as `fits.getdata` gives
    them) and gets the stretch that FITS files get (io.FITS_STRETCH_HELP), not a clip to white."""
    try:
        from PIL import Image

        if isinstance(image, Image.Image):
            image = pil_to_rgb(image)[0]  # float32 (H, W, 3) in [0, 1]; the checks below still apply
    except ImportError:  # pragma: no cover - Pillow is a dependency
        pass
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = (image.float() if image.dtype == torch.bfloat16 else image).numpy()  # numpy has no bfloat16
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise GalcolorError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise GalcolorError(f"image has a zero-size dimension: shape {array.shape}")
    if array.dtype.kind in "uif" and array.dtype.byteorder == (">" if sys.byteorder == "little" else "<"):
        array = array.astype(array.dtype.newbyteorder("="))  # FITS data arrive big-endian
    if array.dtype == np.uint8:
        pixels = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        pixels = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        pixels = _display_levels(array.astype(np.float32))
    else:
        raise GalcolorError(f"unsupported pixel type {array.dtype}: use uint8, uint16 or float "
                            "(float in [0, 1] as display levels; grey float beyond it as linear data, stretched as FITS is)")
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    if pixels.shape[2] == 4:
        return pixels[..., :3] * pixels[..., 3:]
    return pixels


_ROUNDING = 1e-4  # float display levels a hair outside [0, 1] are rounding, not linear data


def _display_levels(pixels: np.ndarray) -> np.ndarray:
    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0 or (finite.min() >= -_ROUNDING and finite.max() <= 1 + _ROUNDING):
        return np.clip(np.nan_to_num(pixels), 0.0, 1.0)
    if pixels.ndim == 2:
        return linear_lightness("array", pixels)
    raise GalcolorError(f"colour float pixels must lie in [0, 1], got {finite.min():.4g} to {finite.max():.4g}; "
                        "pass linear data as one grey band")


def colorize_lab(rgb: np.ndarray, model: LoadedModel, verdicts: list[Verdict] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) float sRGB -> (predicted Lab, input Lab), each (H, W, 3) float32, at full size.
    `verdicts` receives what was decided for the image's colour (predict.Verdict)."""
    if np.ndim(rgb) != 3 or np.shape(rgb)[2] != 3 or 0 in np.shape(rgb)[:2]:
        raise GalcolorError(f"colorize_lab takes float sRGB of shape (H, W, 3); got {np.shape(rgb)} (as_rgb_float converts other images)")
    tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        input_lab = rgb_to_lab(tensor)
        ab = predict_ab_tiled(model, input_lab[:, :1], verdicts=verdicts)
    predicted = torch.cat([input_lab[:, :1], ab], dim=1)
    return predicted[0].permute(1, 2, 0).numpy(), input_lab[0].permute(1, 2, 0).numpy()


def colorize_lab_batch(images: list[np.ndarray], model: LoadedModel, verdicts: list[Verdict] | None = None) -> list[np.ndarray]:
    """Like colorize_lab for several same-size images in one forward pass (large ones go tile by tile)."""
    height, width = images[0].shape[:2]
    if len(images) == 1 or max(height, width) > TILE:
        return [colorize_lab(image, model, verdicts)[0] for image in images]
    tensor = torch.from_numpy(np.stack(images).astype(np.float32, copy=False)).permute(0, 3, 1, 2)
    with torch.inference_mode():
        input_lab = rgb_to_lab(tensor)
        ab = predict_ab(model, input_lab[:, :1], verdicts).cpu()
    predicted = torch.cat([input_lab[:, :1], ab], dim=1).permute(0, 2, 3, 1).numpy()
    return list(predicted)
