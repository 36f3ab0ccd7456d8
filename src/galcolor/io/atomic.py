"""Writing outputs atomically (a temporary file, then a rename): PNGs whole or row by row, bytes and text."""

from __future__ import annotations

import os
import secrets
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from ..errors import GalcolorError
from .decode import _one_line
from .paths import _image_suffix



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


PNG_COMPRESS_LEVEL = 6  # Pillow's and zlib's default

FOLDER_PNG_LEVEL = 3


def write_png(path: Path, rgb: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> None:
    """Write uint8 (H, W, 3) or (H, W) pixels as a PNG, atomically."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or not (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 3)):
        raise ValueError(f"write_png needs uint8 (H, W) or (H, W, 3), got {rgb.dtype} {rgb.shape}")
    image = Image.fromarray(np.ascontiguousarray(rgb))
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG", compress_level=compress_level)


class PngRowWriter:
    """A PNG written band by band of rows, so memory holds one band, never the whole image
    (Pillow needs the whole image, and keeps RGB at 4 bytes a pixel besides).

    Each row gets the PNG filter that Pillow and libpng choose too: of the five, the one whose
    output has the smallest sum of absolute (signed) bytes. Use inside ``atomic_output``.
    """

    def __init__(self, file: BinaryIO, width: int, height: int, channels: int = 3,
                 compress_level: int = PNG_COMPRESS_LEVEL) -> None:
        if channels not in (1, 3):
            raise ValueError(f"PngRowWriter writes grey or RGB, not {channels} channels")
        self.file, self.width, self.height, self.channels = file, width, height, channels
        self.rows_written = 0
        self._previous = np.zeros(width * channels, np.uint8)  # the row above the first is zeros
        self._deflate = zlib.compressobj(compress_level)
        file.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2 if channels == 3 else 0, 0, 0, 0))

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self.file.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    def write(self, rows: np.ndarray) -> None:
        """Append uint8 rows, (n, W, channels) or (n, W) for grey."""
        rows = np.asarray(rows)
        if rows.dtype != np.uint8 or rows.shape[1:] not in ((self.width, self.channels), (self.width,) * (self.channels == 1)):
            raise ValueError(f"expected uint8 rows of width {self.width} with {self.channels} channel(s), got {rows.dtype} {rows.shape}")
        if self.rows_written + len(rows) > self.height:
            raise ValueError(f"more than the {self.height} rows announced")
        flat = np.ascontiguousarray(rows).reshape(len(rows), -1)
        for start in range(0, len(flat), 64):  # the five candidate filterings of 64 rows at a time
            block = flat[start : start + 64]
            data = _png_filtered(block, self._previous, self.channels)
            self._previous = block[-1].copy()
            compressed = self._deflate.compress(data.tobytes())
            if compressed:
                self._chunk(b"IDAT", compressed)
        self.rows_written += len(rows)

    def close(self) -> None:
        if self.rows_written != self.height:
            raise ValueError(f"{self.rows_written} rows written of the {self.height} announced")
        self._chunk(b"IDAT", self._deflate.flush())
        self._chunk(b"IEND", b"")


def _png_filtered(rows: np.ndarray, previous: np.ndarray, bpp: int) -> np.ndarray:
    """(n, stride) raw rows -> (n, 1 + stride) filter byte and filtered bytes (PNG spec, section 9)."""
    x = rows.astype(np.int16)
    up = np.concatenate([previous[None], rows[:-1]]).astype(np.int16)
    left, up_left = np.zeros_like(x), np.zeros_like(x)
    left[:, bpp:], up_left[:, bpp:] = x[:, :-bpp], up[:, :-bpp]
    estimate = left + up - up_left
    distance_left, distance_up, distance_corner = np.abs(estimate - left), np.abs(estimate - up), np.abs(estimate - up_left)
    paeth = np.where((distance_left <= distance_up) & (distance_left <= distance_corner), left,
                     np.where(distance_up <= distance_corner, up, up_left))
    candidates = np.stack([x, x - left, x - up, x - ((left + up) >> 1), x - paeth]).astype(np.uint8)
    cost = np.abs(candidates.view(np.int8).astype(np.int16)).sum(axis=2, dtype=np.int64)  # (5, n)
    choice = cost.argmin(axis=0)  # the lowest-numbered filter on a tie
    out = np.empty((len(rows), rows.shape[1] + 1), np.uint8)
    out[:, 0] = choice
    out[:, 1:] = candidates[choice, np.arange(len(rows))]
    return out


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
