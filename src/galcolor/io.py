"""Reading input images (JPEG/PNG/TIFF/FITS) as sRGB floats, finding inputs, and writing outputs atomically."""

from __future__ import annotations

import gzip
import os
import secrets
import struct
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import GalcolorError, InputError

if TYPE_CHECKING:  # astropy is slow to import; only FITS inputs pay for it
    import astropy.io.fits

DEFAULT_MAX_PIXELS: int = 200_000_000

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".fits", ".fit", ".fts", ".fits.gz", ".fit.gz"}
)
# Longest first, so "a.fits.gz" loses ".fits.gz" rather than just ".gz".
_SUFFIXES_LONGEST_FIRST = sorted(IMAGE_SUFFIXES, key=len, reverse=True)

_ASINH_A = 0.1
_TOP_PERCENTILE = 99.9

FITS_STRETCH_HELP: str = (
    "FITS data become lightness by subtracting the sky (median of the finite pixels), clipping below 0, "
    f"dividing by the {_TOP_PERCENTILE}th percentile of the result (its maximum if that percentile is 0) "
    f"and applying asinh(x/{_ASINH_A})/asinh(1/{_ASINH_A}) (astropy AsinhStretch, a={_ASINH_A}), so values "
    "lie in [0, 1] and NaN/Inf pixels are black. The first HDU holding an image is used (the first 2-D plane "
    "of a cube), flipped so it appears the way DS9 shows it (row 1 at the bottom)."
)

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
    """An input image as float32 sRGB (H, W, 3) in [0, 1]; grey inputs have three equal channels.

    For FITS inputs the rows are flipped to display orientation (FITS row 1 is the bottom), so
    anything that writes FITS output with ``fits_header``'s WCS must flip the array back.
    """

    rgb: np.ndarray
    is_colour: bool
    source: Path
    fits_header: "astropy.io.fits.Header | None" = None


def _one_line(err: BaseException, limit: int = 120) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pixel_limit_problem(width: int, height: int, max_pixels: int) -> str | None:
    if width <= 0 or height <= 0:
        return f"image has a zero-size dimension ({width}×{height})"
    if width * height > max_pixels:
        pixels = f"{width}×{height} = {width * height:,} pixels"
        return f"image is {pixels}, over the limit of {max_pixels:,} (--max-pixels)"
    return None


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode ``path`` (format sniffed from its content) or raise InputError with a one-line reason."""
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
        return _read_fits(path, max_pixels)
    return _read_with_pillow(path, head, max_pixels)


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


def _read_with_pillow(path: Path, head: bytes, max_pixels: int) -> DecodedImage:
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
        problem = _pixel_limit_problem(img.width, img.height, max_pixels)
        if problem:
            raise InputError(path, problem)
        try:
            img.load()  # decode now so truncation errors here instead of yielding a partial image
            ImageOps.exif_transpose(img, in_place=True)
            rgb, maybe_colour = pil_to_rgb(img)
        except Image.DecompressionBombError as e:  # GIF frames are checked again during load
            raise InputError(path, f"image too large: {_one_line(e)}") from None
        except MemoryError:
            raise InputError(path, "not enough memory to decode this image") from None
        except Exception as e:
            raise InputError(path, f"truncated or corrupt image data: {_one_line(e)}") from None
    return DecodedImage(rgb=rgb, is_colour=maybe_colour and _has_colour(rgb), source=path)


def pil_to_rgb(img: Image.Image) -> tuple[np.ndarray, bool]:
    """Float32 (H, W, 3) sRGB in [0, 1], and whether the mode can hold colour at all."""
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
        grey = _scaled(arr, 65535)
    elif mode == "I":
        # Pillow promotes some 16-bit data to int32; judge by the values which range was meant.
        grey = np.clip(arr, 0, None).astype(np.float32)
        grey /= 65535 if grey.max(initial=0) <= 65535 else np.iinfo(np.int32).max
    elif mode == "F":
        grey = np.clip(np.nan_to_num(arr.astype(np.float32), nan=0.0), 0.0, 1.0)
    elif mode == "L":
        grey = _scaled(arr, 255)
    elif mode == "LA":
        grey = _scaled(arr[..., 0], 255) * _scaled(arr[..., 1], 255)  # alpha over black sky
    else:
        rgb = _scaled(arr[..., :3], 255)
        if mode == "RGBA":
            rgb *= _scaled(arr[..., 3], 255)[..., None]
        return rgb, True
    return np.repeat(grey[..., None], 3, axis=2), False


def _scaled(arr: np.ndarray, full_scale: int) -> np.ndarray:
    out = arr.astype(np.float32)
    out /= full_scale  # true division so full scale lands on exactly 1.0
    return out


def _has_colour(rgb: np.ndarray) -> bool:
    # Row blocks keep the temporary small for large images; stop at the first coloured block.
    for start in range(0, rgb.shape[0], 512):
        block = rgb[start : start + 512]
        if (block.max(axis=2) - block.min(axis=2)).max(initial=0) > _COLOUR_THRESHOLD:
            return True
    return False


def _read_fits(path: Path, max_pixels: int) -> DecodedImage:
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyWarning

    try:
        # Non-standard headers are common in archives and astropy still reads them; its
        # verification warnings would only clutter the CLI output.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            # memmap=False because astropy refuses sections of memory-mapped BZERO/BSCALE data;
            # .section still reads only the plane we need, so cubes are not loaded whole.
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                hdu = _first_image_hdu(hdul, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))
                if hdu is None:
                    raise InputError(path, "FITS file has no image data")
                header = hdu.header
                naxis = header["NAXIS"]
                problem = _pixel_limit_problem(header["NAXIS1"], header["NAXIS2"], max_pixels)
                if problem:
                    raise InputError(path, problem)
                first_plane = (0,) * (naxis - 2) + (slice(None), slice(None))
                try:
                    # float32 halves peak memory on big frames; its range and 7 digits
                    # are ample for a display stretch.
                    plane = np.asarray(hdu.section[first_plane], dtype=np.float32)
                except (ValueError, OSError, EOFError) as e:  # a short file shows up as a reshape error
                    reason = f"pixel data unreadable, file cut short? ({_one_line(e, 60)})"
                    raise InputError(path, f"truncated or corrupt FITS data: {reason}") from None
                header = header.copy()
    except InputError:
        raise
    except MemoryError:
        raise InputError(path, "not enough memory to decode this image") from None
    except Exception as e:  # astropy raises many types on truncated or hostile files
        raise InputError(path, f"truncated or corrupt FITS data: {_one_line(e)}") from None

    finite = np.isfinite(plane)
    if not finite.any():
        raise InputError(path, "FITS image has no finite pixels")
    v = _asinh_lightness(plane, finite)[::-1]  # FITS row 1 is the bottom of the picture
    rgb = np.ascontiguousarray(np.repeat(v[..., None], 3, axis=2))
    return DecodedImage(rgb=rgb, is_colour=False, source=path, fits_header=header)


def _first_image_hdu(hdul, image_types):
    for hdu in hdul:
        if not isinstance(hdu, image_types):
            continue
        header = hdu.header
        naxis = header.get("NAXIS", 0)
        if naxis >= 2 and all(header.get(f"NAXIS{i}", 0) > 0 for i in range(1, naxis + 1)):
            return hdu
    return None


def _asinh_lightness(plane: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Float32 lightness in [0, 1] as FITS_STRETCH_HELP describes; non-finite pixels are 0."""
    from astropy.visualization import AsinhStretch, ManualInterval

    values = plane[finite]
    sky = np.median(values)
    with np.errstate(over="ignore", invalid="ignore"):
        top = np.percentile(values, _TOP_PERCENTILE) - sky
        if not top > 0:  # sparse images: >99.9% of pixels at sky level, yet some stars
            top = values.max() - sky
        out = np.zeros(plane.shape, dtype=np.float32)
        if top > 0 and np.isfinite(top):  # a constant image stays black instead of dividing by 0
            stretch = AsinhStretch(a=_ASINH_A) + ManualInterval(0.0, top)
            out[finite] = stretch(values - sky, clip=True)
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def is_image_path(path: str | Path) -> bool:
    return _image_suffix(Path(path).name) is not None


def _image_suffix(name: str) -> str | None:
    lower = name.lower()
    for suffix in _SUFFIXES_LONGEST_FIRST:
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return suffix
    return None


def _without_suffix(name: str) -> str:
    suffix = _image_suffix(name)
    return name[: -len(suffix)] if suffix else Path(name).stem


def find_inputs(inputs: Sequence[str | Path]) -> tuple[list[tuple[Path, PurePosixPath]], list[Path]]:
    """Expand files and folders into (file, output-relative path without suffix) pairs, plus missing args.

    Folders are walked recursively, skipping hidden names; symlinked folders are not descended
    (they can form loops), symlinked files are followed and de-duplicated by their target.
    """
    found: list[tuple[Path, PurePosixPath]] = []
    missing: list[Path] = []
    seen: set[Path] = set()

    def add(file: Path, relative: PurePosixPath) -> None:
        target = file.resolve()
        if target not in seen:
            seen.add(target)
            found.append((file, relative))

    for arg in inputs:
        root = Path(arg)
        if not root.exists():  # also catches symlinks whose target is gone
            missing.append(root)
        elif not root.is_dir():
            add(root, PurePosixPath(_without_suffix(root.name)))
        else:
            for folder, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                rel_folder = Path(folder).relative_to(root).parts
                for name in sorted(filenames):
                    file = Path(folder, name)
                    if name.startswith(".") or not is_image_path(name) or not file.is_file():
                        continue
                    add(file, PurePosixPath(*rel_folder, _without_suffix(name)))
    found.sort(key=lambda pair: (pair[1].as_posix(), str(pair[0])))
    return found, missing


def output_path(out_dir: Path, relative: PurePosixPath | str, suffix: str = ".png") -> Path:
    """``out_dir / relative`` + suffix, refusing anything that would land outside out_dir."""
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or "\\" in str(rel):
        raise GalcolorError(f"{relative}: output path would escape the output folder {out_dir}")
    return Path(out_dir).joinpath(*rel.parts[:-1], rel.name + suffix)


def _temp_suffix(name: str) -> str:
    # Keep the full known suffix (".fits.gz") so writers that pick a format by suffix still do.
    return _image_suffix(name) or Path(name).suffix


def _write_problem(path: Path, err: OSError) -> GalcolorError:
    parent = path.parent
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        blocker = next((p for p in [parent, *parent.parents] if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return GalcolorError(f"{path}: cannot write: {blocker} is a file, not a folder")
    return GalcolorError(f"{path}: cannot write: {err.strerror or _one_line(err)}")


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` on success and is deleted on error.

    Readers never see a half-written output, and an interrupted run leaves no partial file that a
    later "skip existing outputs" pass would mistake for a finished one. An OSError while writing
    becomes a GalcolorError naming ``path``; other exceptions pass through unchanged.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _create_temp(path)
    except OSError as e:
        raise _write_problem(path, e) from None
    try:
        yield tmp
        _fsync(tmp)  # data on disk before the rename, or a crash could leave an empty "finished" file
        os.replace(tmp, path)
    except BaseException as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # the original error matters more than a leftover hidden temp file
        if isinstance(e, OSError):
            raise _write_problem(path, e) from e
        raise
    _fsync(path.parent, best_effort=True)  # makes the rename durable; some filesystems refuse this


def _create_temp(path: Path) -> Path:
    # os.open with 0o666 (unlike mkstemp's 0o600) lets the umask decide, so outputs get the
    # same permissions as any other file the user creates. 64 random bits make clashes moot.
    tmp = path.with_name(f".tmp-{secrets.token_hex(8)}{_temp_suffix(path.name)}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return tmp


def _fsync(path: Path, *, best_effort: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if not best_effort:
            raise


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write uint8 (H, W, 3) or (H, W) pixels as a PNG, atomically."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or not (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 3)):
        raise ValueError(f"write_png needs uint8 (H, W) or (H, W, 3), got {rgb.dtype} {rgb.shape}")
    image = Image.fromarray(np.ascontiguousarray(rgb))
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
