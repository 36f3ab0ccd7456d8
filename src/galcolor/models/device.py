"""Where networks run, and in which precision."""

from __future__ import annotations

import contextvars
from contextlib import contextmanager

import torch

from ..errors import GalcolorError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GalcolorError("--device cuda asked for, but PyTorch sees no CUDA GPU here")
    if name not in DEVICE_CHOICES:
        raise GalcolorError(f"unknown device {name!r}: choose from {', '.join(DEVICE_CHOICES)}")
    return torch.device(name)


def bf16_autocast_pays(device: torch.device) -> bool:
    """bf16 autocast where the hardware has bf16 matrix units (CUDA, or CPUs with AVX512-BF16/AMX).

    On other CPUs bf16 is emulated and slower than fp32, so we stay in fp32 there.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        return bool(probe and probe())
    return False


_FULL_PRECISION = contextvars.ContextVar("galcolor_full_precision", default=False)


@contextmanager
def full_precision():
    """Within this block (in this thread), autocast stays off: fp32 where bf16 would pay, for
    reference runs such as ONNX parity and its benchmark."""
    token = _FULL_PRECISION.set(True)
    try:
        yield
    finally:
        _FULL_PRECISION.reset(token)


def autocast(device: torch.device, enabled: bool = True):
    on = enabled and not _FULL_PRECISION.get() and bf16_autocast_pays(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=on)
