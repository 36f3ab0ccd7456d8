"""Writing one coloured image's files: its extras beside it, then its PNG, each atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import GalcolorError
from ..io.atomic import FOLDER_PNG_LEVEL, atomic_write_bytes, write_png
from ..io.fits_output import write_fits_rgb


def beside(path: Path | str, suffix: str) -> Path:
    """`path` with its suffix replaced by `suffix` (which may hold dots: '.starforming.png')."""
    stem = Path(path).with_suffix("")
    return stem.with_name(stem.name + suffix)


def written(result: tuple, *args) -> tuple:
    """write_outputs(*args), then `result` (verdict, science, notes) with the writing's notes added."""
    notes = write_outputs(*args)
    return (*result[:2], (*result[2], *notes))


def write_outputs(path: Path, rgb8, extra: dict, problem: str | None, fits: bool = False, header=None,
                  compress_level: int = FOLDER_PNG_LEVEL) -> tuple[str, ...]:
    """The extras (same stem), then the coloured PNG, each atomically: a PNG on disk means its
    extras were written before it, whatever stopped the run. Returns the notes about a FITS input's
    header that writing its WCS out gave (io.fits_wcs)."""
    notes = write_fits_rgb(beside(path, ".fits"), rgb8, header) if fits else ()
    for suffix, array in extra.items():
        target = beside(path, suffix)
        if suffix.endswith(".npy"):
            buffer = io.BytesIO()
            np.save(buffer, array)
            atomic_write_bytes(target, buffer.getvalue())
        else:
            write_png(target, array)
    write_png(path, rgb8, compress_level)
    if problem:
        raise GalcolorError(problem)
    return notes
