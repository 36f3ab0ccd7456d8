"""Colour results as FITS: the three colour planes with the input's world coordinates kept."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes
from .fits_wcs import carried_wcs


COLOUR_PLANES = ("RED", "GREEN", "BLUE")


def _celestial_header(source_header, colour_axis: bool = False):
    """The input's celestial WCS as its own cards (fits_wcs), a few identifying keywords, the notes
    about its header, and whether the WCS must go in 2-D images. `colour_axis`: for a cube whose
    third axis holds the colour planes (not with a SIP or PV distortion, which astropy reads in
    two-axis images only)."""
    from astropy.io import fits

    carried = carried_wcs(source_header)
    header = fits.Header(carried.cards)
    if colour_axis and not carried.planar:
        if carried.cards and "WCSAXES" in source_header:  # it must count every axis that has WCS keywords, CTYPE3 included
            header.insert(0, ("WCSAXES", 3, "Number of coordinate axes"))
        header["CTYPE3"] = ("RGB", "colour plane: 1 red, 2 green, 3 blue")
    elif carried.cards and source_header.get("WCSAXES") == 2:
        header.insert(0, ("WCSAXES", 2, "Number of coordinate axes"))
    if source_header is not None:
        for key in ("OBJECT", "TELESCOP", "INSTRUME", "FILTER", "DATE-OBS"):
            if key in source_header and key not in header:
                header[key] = source_header[key]
    return header, carried.notes, carried.planar


def fits_bytes(rgb8: np.ndarray, source_header=None) -> tuple[bytes, tuple[str, ...]]:
    """(H, W, 3) uint8 display-oriented RGB -> a FITS file that reads as [0, 1]: a cube (3, H, W) in
    the primary HDU, DS9's "rgbcube"; where the input's WCS has a SIP or PV distortion, which
    astropy reads only in a two-axis image, three 2-D extensions RED, GREEN, BLUE instead (DS9's
    "rgbimage"), each and the empty primary HDU with the WCS.

    Rows go back to FITS order (row 1 at the bottom; galcolor's reader flipped them for display),
    so the celestial WCS copied from the input header still maps every pixel to the same sky.
    The 8-bit levels are stored as they are (BITPIX 8, BSCALE 1/255): FITS readers scale them to
    [0, 1] as they read, and the file is a quarter of a float32 cube's size.
    Returns the file's bytes and the notes about the input's header (fits_wcs.carried_wcs).
    """
    from astropy.io import fits

    cube = np.ascontiguousarray(rgb8[::-1].transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
    header, notes, planar = _celestial_header(source_header, colour_axis=True)
    header["BUNIT"] = ("", "sRGB in [0, 1]")
    header.add_history("Colourized by galcolor from the lightness of the input; a and b predicted.")
    if planar:
        images = [fits.ImageHDU(plane, header, name=name) for plane, name in zip(cube, COLOUR_PLANES)]
        hdus = fits.HDUList([fits.PrimaryHDU(header=header), *images])
        notes += ("its WCS has a distortion (SIP or PV) that astropy reads in 2-D images only: the FITS output holds "
                  "the colour planes as 2-D extensions RED, GREEN, BLUE (DS9's rgbimage layout), each with the WCS",)
    else:
        images = hdus = [fits.PrimaryHDU(cube, header)]
    for hdu in images:
        hdu.scale("uint8", bscale=1 / 255, bzero=0)
    buffer = io.BytesIO()
    fits.HDUList(hdus).writeto(buffer)
    return buffer.getvalue(), notes


def write_fits_rgb(path: Path, rgb8: np.ndarray, source_header=None) -> tuple[str, ...]:
    """Write fits_bytes atomically; returns the notes about the input's header."""
    data, notes = fits_bytes(rgb8, source_header)
    atomic_write_bytes(Path(path), data)
    return notes


def write_fits_labels(path: Path, labels: np.ndarray, source_header=None, what: str = "region") -> tuple[str, ...]:
    """(H, W) integer labels in display orientation (0: none, k: the k-th region) -> a FITS image in
    FITS row order with the input's celestial WCS, written atomically; returns the notes about the header."""
    from astropy.io import fits

    header, notes, _ = _celestial_header(source_header)
    header["BUNIT"] = ("", f"0 outside, k inside {what} k")
    header.add_history(f"{what} labels found by galcolor in its colourized image")
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.ascontiguousarray(labels[::-1], dtype=np.int32), header).writeto(buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return notes
