"""Colour composites from survey band images (Lupton et al. 2004), for truth images and training pairs.

Users hold one FITS image per band (SDSS/DES/Pan-STARRS g r i z, HSC g r i z y, HST F606W F850LP
F125W F160W ...). This module turns 2 or more such bands into an 8-bit RGB image with astropy's
``make_lupton_rgb``: the asinh stretch is applied to the *total* intensity and every channel is
scaled by the same factor, so colours are preserved from the faint outskirts to the bright core
instead of every bright centre burning out to white.

Band-to-channel mapping (bands given bluest first, i.e. in order of increasing wavelength):

* 2 bands: B = bluest, R = reddest, G = mean of the two.
* 3 bands: B, G, R = bands 1, 2, 3 (SDSS g r i -> B G R, the standard Lupton/SDSS convention).
* n > 3: the bands are split into three contiguous groups as evenly as possible, any larger group
  at the red end; each channel is the unweighted mean of its group. g r i z -> B=g, G=r,
  R=mean(i, z); g r i z y -> B=g, G=mean(r, i), R=mean(z, y); v z j h -> B=v, G=z, R=mean(j, h).

Per band, before mapping: ``minimum`` (default: the sky level, a 3-sigma-clipped median) is
subtracted, pixels that are NaN or +-inf (masked pixels, survey edges) are set to that minimum
(so they show as sky: black), and the band is multiplied by its ``scale`` (default 1).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.utils.exceptions import AstropyWarning
from astropy.visualization import make_lupton_rgb

from ..errors import GalcolorError, InputError
from .atomic import write_png

__all__ = [
    "DEFAULT_Q",
    "NOISE_FLOOR",
    "REFERENCE_LEVEL",
    "REFERENCE_PERCENTILE",
    "band_channels",
    "lupton_composite",
    "read_band",
    "write_composite",
]

#: Asinh softening. Larger Q compresses the bright end harder (astropy defaults to 8; 10 measured
#: better on faint outskirts without lighting the sky: see NOTES.md).
DEFAULT_Q = 10.0
#: Automatic stretch (see ``_auto_stretch``): at most (100 - REFERENCE_PERCENTILE)% of the signal
#: pixels get a channel brighter than REFERENCE_LEVEL of white, and the stretch is at least
#: NOISE_FLOOR sky sigmas so that sky noise stays dark.
REFERENCE_PERCENTILE = 99.0
REFERENCE_LEVEL = 0.9
NOISE_FLOOR = 20.0
_FITS_MAGIC = (b"SIMPLE", b"\x1f\x8b", b"BZh", b"PK\x03\x04")  # plain FITS, gzip, bzip2, zip


def _clipped_stats(values: np.ndarray) -> tuple[float, float]:
    """Sky median and sigma (3-sigma clipped) of the finite values; at most ~1e6 of them are used
    (a fixed stride) so a 10k×10k mosaic costs no more than a cutout."""
    flat = values[np.isfinite(values)]
    flat = flat[:: max(1, flat.size // 1_000_000)].astype(np.float64)  # float32 squares overflow
    _, median, std = sigma_clipped_stats(flat, sigma=3.0, maxiters=10)
    return float(median), float(std)


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def read_band(path: str | os.PathLike, hdu: int | str | None = None) -> np.ndarray:
    """Return one band image as a float32 2-D array, or raise ``InputError(path, problem)``.

    Without ``hdu`` the first HDU holding a 2-D image is used, skipping empty primaries (as in
    ``.fz`` tile-compressed files), tables and 1-D arrays (SDSS frames carry both after the image).
    Length-1 axes are squeezed (1×H×W is accepted), but a real cube is refused: composites need one
    band per file so that the band order on the command line is the colour order. Every failure is
    one line naming the file, never an astropy traceback.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a folder, not a FITS file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from exc
    if not head:
        raise InputError(path, "is empty (0 bytes)")
    if not head.startswith(_FITS_MAGIC):
        raise InputError(path, "not a FITS file (no FITS header at its start)")
    others: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)  # header-fixing chatter
            with fits.open(path) as hdul:
                if hdu is not None:
                    try:
                        chosen = [hdul[hdu]]
                    except (KeyError, IndexError):
                        raise InputError(path, f"has no HDU {hdu!r} (it has {len(hdul)})") from None
                else:
                    chosen = list(hdul)
                for unit in chosen:
                    data = unit.data if unit.is_image else None
                    if data is None or data.size == 0:
                        continue
                    squeezed = np.squeeze(data)
                    if squeezed.ndim == 2:
                        image = np.array(squeezed, dtype=np.float32)  # copy before the file closes
                        break
                    others.append(_shape(data.shape))
                else:
                    image = None
    except GalcolorError:
        raise
    except Exception as exc:  # a broken file can raise OSError, TypeError, ValueError ...
        msg = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(path, f"cannot read this FITS file (truncated or corrupt?): {msg}") from exc
    if image is None:
        cubes = [s for s in others if s.count("×") >= 2]
        if cubes:
            raise InputError(path, f"holds a {cubes[0]} cube, not a 2-D image; give one band per file")
        what = f"only a 1-D array of {others[0]} values" if others else "no image data"
        where = f"HDU {hdu!r}" if hdu is not None else "it"
        raise InputError(path, f"has no 2-D image ({where} holds {what})")
    if not np.isfinite(image).any():
        raise InputError(path, "has no finite pixels (all NaN or inf)")
    return image


def band_channels(n_bands: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Indices of the bands (bluest first) averaged into R, G and B; see the module docstring."""
    if n_bands < 2:
        raise GalcolorError(f"a colour composite needs at least two bands; got {n_bands}")
    if n_bands == 2:
        return (1,), (0, 1), (0,)
    reddest_first = np.array_split(np.arange(n_bands)[::-1], 3)  # larger groups land at the red end
    r, g, b = (tuple(sorted(int(i) for i in grp)) for grp in reddest_first)
    return r, g, b


def _per_band(value: float | Sequence[float] | None, n: int, name: str) -> list[float | None]:
    if value is None or np.ndim(value) == 0:
        return [None if value is None else float(value)] * n  # type: ignore[arg-type]
    values = [float(v) for v in value]  # type: ignore[union-attr]
    if len(values) != n:
        raise GalcolorError(f"got {len(values)} {name} values for {n} bands; give one per band")
    return values


def _prepare(bands: Sequence[np.ndarray], minimum, scales) -> list[np.ndarray]:
    """Validate the bands; return the R, G, B channel images, sky-subtracted, scaled and finite."""
    if isinstance(bands, np.ndarray) and bands.ndim == 2:
        raise GalcolorError("got a single 2-D image; a colour composite needs at least two bands")
    arrays = [np.asarray(b) for b in bands]
    r_idx, g_idx, b_idx = band_channels(len(arrays))
    for i, a in enumerate(arrays, 1):
        if a.ndim != 2:
            raise GalcolorError(f"band {i} is {_shape(a.shape)}; each band must be a 2-D image")
        if a.shape != arrays[0].shape:
            raise GalcolorError(
                f"bands differ in shape: band 1 is {_shape(arrays[0].shape)} but band {i} is "
                f"{_shape(a.shape)}; resample them to one pixel grid first")
    minima = _per_band(minimum, len(arrays), "minimum")
    factors = _per_band(1.0 if scales is None else scales, len(arrays), "scale")
    prepared = []
    for i, (a, lo, k) in enumerate(zip(arrays, minima, factors), 1):
        if not (np.isfinite(k) and k > 0):
            raise GalcolorError(f"the scale of band {i} must be a positive number, not {k}")
        a = a.astype(np.float32)
        finite = np.isfinite(a)
        if not finite.any():
            raise GalcolorError(f"band {i} has no finite pixels (all NaN or inf)")
        if lo is None:
            lo = _clipped_stats(a)[0]  # the sky level
        elif not np.isfinite(lo):
            raise GalcolorError(f"the minimum of band {i} must be a finite number, not {lo}")
        prepared.append(np.where(finite, (a - np.float32(lo)) * np.float32(k), np.float32(0)))
    return [np.mean([prepared[j] for j in idx], axis=0, dtype=np.float32) for idx in (r_idx, g_idx, b_idx)]


def _auto_stretch(channels: Sequence[np.ndarray], Q: float) -> float:
    """Pick astropy's ``stretch`` from the data, so any units (nanomaggies, e-/s, counts) work.

    astropy maps a pixel to channel values x * f(I)/I, with I the mean of the channels and
    f(I) = asinh(Q*I/stretch) * 0.1/asinh(0.1*Q); a channel is burnt out at 1. Solving per pixel
    for the stretch that puts its brightest channel at REFERENCE_LEVEL gives a closed form; the
    REFERENCE_PERCENTILE of that over the signal pixels (I > 3 sigma) leaves only the brightest
    ~1% of the galaxy at or above that level. The stretch is kept >= NOISE_FLOOR times the
    noisiest channel's sky sigma so that, for a faint galaxy, sky noise stays dark grain instead
    of bright coloured speckles.
    """
    rgb = np.asarray(channels, dtype=np.float32)
    intensity = rgb.mean(axis=0)
    floor = NOISE_FLOOR * max(_clipped_stats(c)[1] for c in rgb)
    sigma_i = _clipped_stats(intensity)[1]
    signal = intensity > max(3.0 * sigma_i, 0.0)
    if not signal.any():
        return floor if floor > 0 else 1.0
    i_sig = intensity[signal]
    colour = np.maximum(rgb[:, signal].max(axis=0) / i_sig, 1.0)  # brightest channel / mean
    slope = 0.1 / np.arcsinh(0.1 * Q)
    per_pixel = Q * i_sig / np.sinh(REFERENCE_LEVEL / (colour * slope))
    return max(float(np.percentile(per_pixel, REFERENCE_PERCENTILE)), floor) or 1.0


def lupton_composite(
    bands: Sequence[np.ndarray],
    *,
    stretch: float | None = None,
    Q: float = DEFAULT_Q,
    minimum: float | Sequence[float] | None = None,
    scales: float | Sequence[float] | None = None,
) -> np.ndarray:
    """Combine 2-D band images, bluest first, into a uint8 (H, W, 3) RGB image in the bands' pixel order.

    ``minimum`` (scalar or one per band; None = each band's sigma-clipped sky median) is mapped to
    black; non-finite pixels are set to it. ``scales`` multiply each sky-subtracted band to balance
    colours between surveys (default 1). ``stretch`` is astropy's linear-stretch parameter in the
    (scaled) data units; None picks it from the data (see ``_auto_stretch``). Row 0 stays row 0:
    flip vertically (as ``write_composite`` does) to display FITS images north-up.
    """
    if not (np.isfinite(Q) and Q > 0):
        raise GalcolorError(f"Q must be a positive number, not {Q}")
    if stretch is not None and not (np.isfinite(stretch) and stretch > 0):
        raise GalcolorError(f"stretch must be a positive number, not {stretch}")
    r, g, b = _prepare(bands, minimum, scales)
    if stretch is None:
        stretch = _auto_stretch((r, g, b), Q)
    # The sky is already subtracted, so astropy's default interval (vmin=0) is right; its
    # ``minimum`` argument is deprecated in astropy 8 and works per channel, not per band.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        unit = make_lupton_rgb(r, g, b, stretch=float(stretch), Q=float(Q), output_dtype=np.float64)
    # astropy's own uint8 conversion (x * 255, truncated), made safe: a float32 overflow (sentinel
    # pixels of 1e30 with a tiny stretch) gives NaN, which would cast to an undefined byte.
    unit = np.clip(np.nan_to_num(unit, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return (unit * 255.0).astype(np.uint8)


def write_composite(
    paths: Sequence[str | os.PathLike], out_path: str | os.PathLike, **kwargs
) -> np.ndarray:
    """Read band files (bluest first), compose them and write a PNG; return the RGB array written.

    ``kwargs`` go to ``lupton_composite``. The PNG is flipped vertically (FITS row 1 is the bottom)
    so it looks as in ds9 or survey viewers; the returned array is that flipped image. An output
    that would overwrite one of the inputs is refused before anything is read.
    """
    out, paths = Path(out_path), list(paths)
    for p in paths:
        if Path(p).resolve() == out.resolve() or (out.exists() and Path(p).exists()
                                                  and os.path.samefile(p, out)):
            raise InputError(out, "is one of the input bands; refusing to overwrite it")
    if out.suffix.lower() != ".png":
        raise InputError(out, "the composite is written as PNG; give an output name ending in .png")
    band_channels(len(paths))  # fail on a single band before reading anything
    bands = [read_band(p) for p in paths]
    for p, band in zip(paths[1:], bands[1:]):
        if band.shape != bands[0].shape:
            raise GalcolorError(f"{p} is {_shape(band.shape)} but {paths[0]} is "
                                f"{_shape(bands[0].shape)}; resample them to one pixel grid first")
    rgb = np.flipud(lupton_composite(bands, **kwargs)).copy()
    if not out.parent.is_dir():
        raise InputError(out, f"cannot write: folder {out.parent} does not exist")
    write_png(out, rgb)
    return rgb
