"""Colour results as FITS: the three colour planes with the input's world coordinates kept."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes


def _celestial_header(source_header):
    from astropy.io import fits
    from astropy.wcs import WCS

    header = fits.Header()
    if source_header is not None:
        wcs = WCS(source_header, naxis=2, relax=True)  # the celestial axes of a cube too
        if wcs.has_celestial:
            header.update(wcs.celestial.to_header(relax=True))
        for key in ("OBJECT", "TELESCOP", "INSTRUME", "FILTER", "DATE-OBS"):
            if key in source_header:
                header[key] = source_header[key]
    return header


def fits_bytes(rgb8: np.ndarray, source_header=None) -> bytes:
    """(H, W, 3) uint8 display-oriented RGB -> a FITS file: cube (3, H, W) that reads as [0, 1].

    Rows go back to FITS order (row 1 at the bottom; galcolor's reader flipped them for display),
    so the celestial WCS copied from the input header still maps every pixel to the same sky.
    The 8-bit levels are stored as they are (BITPIX 8, BSCALE 1/255): FITS readers scale them to
    [0, 1] as they read, and the file is a quarter of a float32 cube's size.
    """
    from astropy.io import fits

    cube = np.ascontiguousarray(rgb8[::-1].transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
    header = _celestial_header(source_header)
    header["CTYPE3"] = ("RGB", "colour plane: 1 red, 2 green, 3 blue")
    if "WCSAXES" in header:  # it must count every axis that has WCS keywords, CTYPE3 included
        header["WCSAXES"] = 3
    header["BUNIT"] = ("", "sRGB in [0, 1]")
    header.add_history("Colourized by galcolor from the lightness of the input; a and b predicted.")
    buffer = io.BytesIO()
    hdu = fits.PrimaryHDU(cube, header)
    hdu.scale("uint8", bscale=1 / 255, bzero=0)
    hdu.writeto(buffer)
    return buffer.getvalue()


def write_fits_rgb(path: Path, rgb8: np.ndarray, source_header=None) -> None:
    atomic_write_bytes(Path(path), fits_bytes(rgb8, source_header))


def write_fits_labels(path: Path, labels: np.ndarray, source_header=None, what: str = "region") -> None:
    """(H, W) integer labels in display orientation (0: none, k: the k-th region) -> a FITS image in
    FITS row order with the input's celestial WCS, written atomically."""
    from astropy.io import fits

    header = _celestial_header(source_header)
    header["BUNIT"] = ("", f"0 outside, k inside {what} k")
    header.add_history(f"{what} labels found by galcolor in its colourized image")
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.ascontiguousarray(labels[::-1], dtype=np.int32), header).writeto(buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())
