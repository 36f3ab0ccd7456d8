"""Decoding input images (JPEG/PNG/TIFF/BMP/GIF/WebP and FITS) as sRGB floats, with one-line errors for bad files."""

from __future__ import annotations

import gzip
import struct
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from .fits_wcs import astropy_quiet
from .stretch import FITS_STRETCH_HELP, asinh_lightness, read_frame, stretch_frame  # noqa: F401  (the CLI's help reads FITS_STRETCH_HELP here)

if TYPE_CHECKING:  # astropy is slow to import; only FITS inputs pay for it
    import astropy.io.fits


DEFAULT_MAX_PIXELS: int = 200_000_000

# Channels of a "grey" RGB file may differ by one 8-bit level (JPEG rounding); the epsilon
# absorbs float32 error when comparing against exactly 1/255.
_COLOUR_THRESHOLD = 1 / 255 + 1e-5

# Only formats Pillow decodes in-process: e.g. EPS would run Ghostscript on untrusted input.
# (Multi-picture JPEGs need no "MPO" entry: the JPEG opener hands them over itself.)
_PIL_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "GIF", "WEBP", "PPM", "JPEG2000")

_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"GIF8", b"BM")

_FITS_MAGIC = b"SIMPLE  ="

_GZIP_MAGIC = b"\x1f\x8b"

# Pillow's bomb limit is a module global; we lift it only while Image.open runs (our own
# max_pixels check replaces it), and the lock keeps concurrent readers from restoring it early.
_PIL_LIMIT_LOCK = threading.Lock()


@dataclass(frozen=True)
class DecodedImage:
    """An input image: ``rgb`` is float32 sRGB (H, W, 3) in [0, 1]; grey inputs have three equal channels.

    The pixels are kept as decoded (8-bit stays uint8, grey stays one channel) and converted to
    float only when asked: a whole 8192x8192 RGB image as float32 would take 805 MB, its 8-bit
    pixels 201 MB, so large images are read band by band through ``rgb_rows``.

    For FITS inputs the rows are flipped to display orientation (FITS row 1 is the bottom), so
    anything that writes FITS output with ``fits_header``'s WCS must flip the array back.
    """

    pixels: np.ndarray  # (H, W) grey or (H, W, 3) RGB: uint8 (/255), uint16 (/65535) or float32 in [0, 1]
    is_colour: bool
    source: Path
    fits_header: "astropy.io.fits.Header | None" = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]

    @cached_property
    def rgb(self) -> np.ndarray:
        return self.rgb_rows(0, self.pixels.shape[0])

    def rgb_rows(self, top: int, bottom: int) -> np.ndarray:
        """Float32 sRGB (bottom - top, W, 3) of rows [top, bottom), exactly as ``rgb`` holds them."""
        return _as_rgb_float(self.pixels[top:bottom])


def _as_rgb_float(pixels: np.ndarray) -> np.ndarray:
    """Kept pixels -> float32 sRGB (H, W, 3) in [0, 1]; grey becomes three equal channels."""
    band = _as_float(pixels)
    return np.repeat(band[..., None], 3, axis=2) if band.ndim == 2 else band


def _as_float(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return _scaled(pixels, 255)
    if pixels.dtype == np.uint16:
        return _scaled(pixels, 65535)
    return np.array(pixels, dtype=np.float32)  # a copy: callers may scale it in place


def _one_line(err: BaseException, limit: int = 120) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pixel_limit_problem(width: int, height: int, max_pixels: int, limit_name: str) -> str | None:
    if width <= 0 or height <= 0:
        return f"image has a zero-size dimension ({width}×{height})"
    if width * height > max_pixels:
        pixels = f"{width}×{height} = {width * height:,} pixels"
        return f"image is {pixels}, over the limit of {max_pixels:,} ({limit_name})"
    return None


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, limit_name: str = "--max-pixels") -> DecodedImage:
    """Decode ``path`` (format sniffed from its content) or raise InputError with a one-line reason.
    ``limit_name`` says in that reason where ``max_pixels`` came from (the CLI's flag by default)."""
    path = Path(path)
    try:
        st = path.stat()
        if path.is_dir():
            raise InputError(path, "is a folder, not an image file")
        if not path.is_file():
            raise InputError(path, "not a regular file")
        if st.st_size == 0:
            raise InputError(path, "empty file (0 bytes)")
        with open(path, "rb") as f:
            head = f.read(32)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(path, "no such file") from None
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or _one_line(e)}") from None

    if head.startswith(_FITS_MAGIC) or (head.startswith(_GZIP_MAGIC) and _gzip_holds_fits(path)):
        return _read_fits(path, max_pixels, limit_name)
    return _read_with_pillow(path, head, max_pixels, limit_name)


def _gzip_holds_fits(path: Path) -> bool:
    try:
        with gzip.open(path, "rb") as f:
            return f.read(len(_FITS_MAGIC)) == _FITS_MAGIC
    except (OSError, EOFError):
        return False


def _png_header_size(head: bytes) -> tuple[int, int] | None:
    # Pillow refuses to identify a PNG with a zero dimension; read IHDR so we can say why.
    if head.startswith(_IMAGE_MAGIC[0]) and head[12:16] == b"IHDR" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    return None


def _read_with_pillow(path: Path, head: bytes, max_pixels: int, limit_name: str) -> DecodedImage:
    try:
        with _PIL_LIMIT_LOCK:
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                img = Image.open(path, formats=_PIL_FORMATS)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        size = _png_header_size(head)
        if size and 0 in size:
            raise InputError(path, f"image has a zero-size dimension ({size[0]}×{size[1]})") from None
        if head.startswith(_IMAGE_MAGIC):
            raise InputError(path, "truncated or corrupt image data: header not readable") from None
        raise InputError(path, "not a readable image (unrecognised format)") from None
    except Exception as e:  # Pillow's parsers raise many types on hostile input
        raise InputError(path, f"truncated or corrupt image data: {_one_line(e)}") from None

    with img:
        problem = _pixel_limit_problem(img.width, img.height, max_pixels, limit_name)
        if problem:
            raise InputError(path, problem)
        try:
            img.load()  # decode now so truncation errors here instead of yielding a partial image
            ImageOps.exif_transpose(img, in_place=True)
            pixels, maybe_colour = pil_pixels(img, path)
        except InputError:
            raise
        except Image.DecompressionBombError as e:  # GIF frames are checked again during load
            raise InputError(path, f"image too large: {_one_line(e)}") from None
        except MemoryError:
            raise InputError(path, "not enough memory to decode this image") from None
        except Exception as e:
            raise InputError(path, f"truncated or corrupt image data: {_one_line(e)}") from None
    return DecodedImage(pixels=pixels, is_colour=maybe_colour and _has_colour(pixels), source=path)


def pil_to_rgb(img: Image.Image) -> tuple[np.ndarray, bool]:
    """Float32 (H, W, 3) sRGB in [0, 1], and whether the mode can hold colour at all."""
    pixels, maybe_colour = pil_pixels(img)
    return _as_rgb_float(pixels), maybe_colour


def pil_pixels(img: Image.Image, source: str | Path = "image") -> tuple[np.ndarray, bool]:
    """The image's pixels as DecodedImage keeps them, and whether the mode can hold colour at all.

    8- and 16-bit data stay integers; modes that need arithmetic to become sRGB (alpha over black
    sky, 32-bit integers, floats) become float32 in [0, 1]. 32-bit integers beyond 16-bit range and
    floats beyond [0, 1] are linear data (counts, fluxes), not display levels: they are stretched
    as FITS data are (FITS_STRETCH_HELP), rather than coming out black or white. `source` names
    the file in the error an image with no finite pixels raises.
    """
    mode = img.mode
    if mode == "1":
        img, mode = img.convert("L"), "L"
    elif mode == "P" or mode == "PA":
        mode = "RGBA" if mode == "PA" or "transparency" in img.info else "RGB"
        img = img.convert(mode)
    elif mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and not mode.startswith("I;16"):
        img, mode = img.convert("RGB"), "RGB"  # CMYK, YCbCr, LAB, RGBX, ...

    arr = np.asarray(img)
    if mode.startswith("I;16"):
        return arr.astype(np.uint16, copy=False), False  # I;16B arrives big-endian
    if mode == "I":
        # Pillow promotes 16-bit data to int32; judge by the values which range was meant.
        if arr.min(initial=0) >= 0 and arr.max(initial=0) <= 65535:
            return _scaled(arr, 65535), False
        return linear_lightness(source, arr.astype(np.float32)), False
    if mode == "F":
        values = arr.astype(np.float32)
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:  # already display levels
            return np.nan_to_num(values, nan=0.0), False
        return linear_lightness(source, values), False
    if mode == "L":
        return arr, False
    if mode == "LA":
        return _scaled(arr[..., 0], 255) * _scaled(arr[..., 1], 255), False  # alpha over black sky
    if mode == "RGBA":
        rgb = _scaled(arr[..., :3], 255)
        rgb *= _scaled(arr[..., 3], 255)[..., None]
        return rgb, True
    return arr[..., :3], True


def linear_lightness(source: str | Path, values: np.ndarray) -> np.ndarray:
    height, width = values.shape
    return asinh_lightness(Path(source), lambda top, bottom: values[top:bottom], height, width)


def _scaled(arr: np.ndarray, full_scale: int) -> np.ndarray:
    out = arr.astype(np.float32)
    out /= full_scale  # true division so full scale lands on exactly 1.0
    return out


def _has_colour(pixels: np.ndarray) -> bool:
    if pixels.ndim == 2:
        return False
    # Row blocks keep temporaries small for large images; stop at the first coloured block.
    # Channel by channel: numpy's max/min along a last axis of 3 is several times slower.
    for start in range(0, pixels.shape[0], 512):
        block = pixels[start : start + 512]
        if block.dtype == np.uint8:  # in 8-bit levels: more than one level apart (see _COLOUR_THRESHOLD)
            red, green, blue = (block[..., channel].astype(np.int16) for channel in range(3))
            threshold = 1
        else:
            red, green, blue = (channel for channel in np.moveaxis(_as_float(block), 2, 0))
            threshold = _COLOUR_THRESHOLD
        spread = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
        if spread.max(initial=0) > threshold:
            return True
    return False


def _read_fits(path: Path, max_pixels: int, limit_name: str) -> DecodedImage:
    from astropy.io import fits

    try:
        # Non-standard headers are common in archives and astropy still reads them; its
        # verification warnings (and log lines, on stdout) would only clutter the CLI output.
        with astropy_quiet():
            # .section reads only the rows asked for, so a large frame is read band by band and a
            # cube is never loaded whole. Not memory-mapped: each page of a map that has been read
            # stays resident while the map is open (the whole frame by the end), and astropy
            # refuses sections of memory-mapped BZERO/BSCALE data anyway.
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                hdu = _first_image_hdu(hdul, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))
                if hdu is None:
                    raise InputError(path, "FITS file has no image data")
                header = hdu.header
                naxis = header["NAXIS"]
                problem = _pixel_limit_problem(header["NAXIS1"], header["NAXIS2"], max_pixels, limit_name)
                if problem:
                    raise InputError(path, problem)
                plane = (0,) * (naxis - 2)  # the first 2-D plane of a cube

                def rows(top: int, bottom: int) -> np.ndarray:
                    # float32 halves peak memory on big frames; its range and 7 digits are ample for a display stretch.
                    return np.asarray(hdu.section[(*plane, slice(top, bottom), slice(None))], dtype=np.float32)

                try:
                    frame = read_frame(rows, header["NAXIS2"], header["NAXIS1"])
                except (ValueError, OSError, EOFError) as e:  # a short file shows up as a reshape error
                    reason = f"pixel data unreadable, file cut short? ({_one_line(e, 60)})"
                    raise InputError(path, f"truncated or corrupt FITS data: {reason}") from None
                header = header.copy()
        lightness = stretch_frame(path, frame)  # outside the lock: another thread may read meanwhile
    except InputError:
        raise
    except MemoryError:
        raise InputError(path, "not enough memory to decode this image") from None
    except Exception as e:  # astropy raises many types on truncated or hostile files
        raise InputError(path, f"truncated or corrupt FITS data: {_one_line(e)}") from None
    # FITS row 1 is the bottom of the picture; a flipped view costs no copy.
    return DecodedImage(pixels=lightness[::-1], is_colour=False, source=path, fits_header=header)


def _first_image_hdu(hdul, image_types):
    for hdu in hdul:
        if not isinstance(hdu, image_types):
            continue
        header = hdu.header
        naxis = header.get("NAXIS", 0)
        if naxis >= 2 and all(header.get(f"NAXIS{i}", 0) > 0 for i in range(1, naxis + 1)):
            return hdu
    return None


"""zlib level of `galcolor colorize`'s PNGs: on 256x256 SDSS galaxies coloured by the shipped
model, 3x faster to encode than level 6 for files 8 % larger (the pixels are the same at every level)."""
