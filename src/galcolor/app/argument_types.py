"""The checks on the values of command-line arguments, and the arguments every command shares."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..color.style import MAX_SATURATION
from ..models.device import DEVICE_CHOICES


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _png_level(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"must be 0 to 9, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of at least 0, got {text}")
    return value


def _saturation(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= MAX_SATURATION:
        raise argparse.ArgumentTypeError(f"must lie between 0 and {MAX_SATURATION:g}, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def _fraction_inclusive(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1, got {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie above 0 and at most 1, got {text}")
    return value


def _fraction_percent(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 100, got {text}")
    return value


def _common_arguments(sub: argparse.ArgumentParser, model: bool = True) -> None:
    if model:
        sub.add_argument("--model", type=Path, default=None, help="a galcolor .safetensors checkpoint (default: the shipped model)")
    sub.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="where the network runs (default: auto, CUDA when present)")
    sub.add_argument("-q", "--quiet", action="store_true", help="no progress bars or tables, only errors")
    sub.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
