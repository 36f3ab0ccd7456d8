"""Public galaxy data sets: pinned downloads (pooch, SHA-256 checked) and reading their HDF5 files.

``galcolor data download galaxy10-decals`` fetches Galaxy10 DECaLS (Leung & Bovy; 17,736 colour g/r/z
cutouts of 256x256 pixels with Galaxy Zoo classes) and checks it against the hash pinned here, so a
corrupted or altered file is refused rather than trained on.

The HDF5 layout read here is Galaxy10's: a dataset ``images`` of shape (N, H, W, 3), uint8 sRGB, and
optionally ``ans`` (N,) integer class labels. Reading is by slices, so a subset never needs the whole
3.5 GB of pixels in memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from .errors import GalcolorError

if TYPE_CHECKING:
    from .data import GalaxySet

HDF5_SUFFIXES: frozenset[str] = frozenset({".h5", ".hdf5", ".he5"})
# Images read per h5py call: 256 Galaxy10 cutouts are 50 MB, so memory stays bounded while reading.
READ_CHUNK = 256


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    filename: str
    url: str
    sha256: str
    description: str


REGISTRY: dict[str, DatasetInfo] = {
    "galaxy10-decals": DatasetInfo(
        name="galaxy10-decals",
        filename="Galaxy10_DECals.h5",
        url="https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5",
        sha256="19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571",
        description="Galaxy10 DECaLS: 17,736 galaxies, 256x256 g/r/z colour (uint8 'images'), 10 Galaxy Zoo classes ('ans')",
    ),
}

# Galaxy10 classes: 0 disturbed, 1 merging, 2 round smooth, 3 in-between round smooth, 4 cigar-shaped smooth,
# 5 barred spiral, 6 unbarred tight spiral, 7 unbarred loose spiral, 8 edge-on without bulge, 9 edge-on with bulge.
# galcolor's evaluation labels: 1 spiral, 0 non-spiral (smooth), None when neither (mergers, edge-on discs).
GALAXY10_CLASSES: tuple[str, ...] = (
    "disturbed", "merging", "round smooth", "in-between round smooth", "cigar-shaped smooth",
    "barred spiral", "unbarred tight spiral", "unbarred loose spiral", "edge-on without bulge", "edge-on with bulge",
)
GALAXY10_SPIRAL_LABELS: dict[int, int] = {2: 0, 3: 0, 4: 0, 5: 1, 6: 1, 7: 1}


def default_data_dir() -> Path:
    """$GALCOLOR_DATA_DIR, else the OS cache folder (~/.cache/galcolor on Linux)."""
    env = os.environ.get("GALCOLOR_DATA_DIR")
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("galcolor"))


def _one_line(text: object, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _dataset(name: str) -> DatasetInfo:
    try:
        return REGISTRY[name]
    except KeyError:
        raise GalcolorError(f"unknown data set {name!r}: known ones are {', '.join(sorted(REGISTRY))}") from None


def download(
    name: str,
    directory: str | Path,
    url_override: str | None = None,
    progress: bool = True,
    *,
    known_hash_override: str | None = None,
) -> Path:
    """Download data set `name` into `directory` (kept if already there and intact); return its path.

    The file is fetched to a temporary name beside the final one and renamed only once its SHA-256
    matches the pinned hash (`known_hash_override`, a bare hex SHA-256, replaces it; for tests and
    mirrors). A mismatch or a network failure raises GalcolorError with one line, and leaves nothing
    under the final name.
    """
    import pooch
    import requests

    info = _dataset(name)
    sha256 = (known_hash_override or info.sha256).lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise GalcolorError(f"{name}: the expected SHA-256 must be 64 hex digits, got {sha256!r}")
    url = url_override or info.url
    directory = Path(directory)
    target = directory / info.filename
    if directory.exists() and not directory.is_dir():
        raise GalcolorError(f"{directory}: cannot download into it: it is a file, not a folder")

    logger = pooch.get_logger()
    saved_level = logger.level
    if not progress:
        logger.setLevel("WARNING")  # pooch logs "Downloading data from ..." at INFO
    try:
        path = pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256}",
            fname=info.filename,
            path=directory,
            downloader=pooch.HTTPDownloader(progressbar=progress, timeout=(30, 120)),
        )
    except ValueError as err:
        if "hash" not in str(err).lower():
            raise GalcolorError(f"could not download {name} from {url}: {_one_line(err)}") from None
        got = re.search(r"but got (\w+)", str(err))
        _remove_stale(target, sha256)
        raise GalcolorError(
            f"{name}: the file downloaded from {url} is corrupt or not the expected one "
            f"(SHA-256 {got.group(1)[:16] + '…' if got else 'different'}, expected {sha256[:16]}…); it was deleted, "
            f"nothing saved as {target}"
        ) from None
    except requests.exceptions.RequestException as err:
        raise GalcolorError(f"could not download {name} from {url}: {_request_reason(err)}") from None
    except OSError as err:  # a full disk, a folder we may not write to
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        raise GalcolorError(f"could not download {name} into {directory}: {where}{err.strerror or _one_line(err)}") from None
    finally:
        logger.setLevel(saved_level)
    return Path(path)


def _remove_stale(target: Path, sha256: str) -> None:
    """A file already under the final name that fails the pinned hash is no good to anyone: remove it."""
    if not target.is_file():
        return
    import pooch

    try:
        if pooch.file_hash(str(target), alg="sha256") != sha256:
            target.unlink()
    except OSError:
        pass


def _request_reason(err: Exception) -> str:
    import requests

    if isinstance(err, requests.exceptions.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code} {err.response.reason or ''}".strip()
    if isinstance(err, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(err, requests.exceptions.ConnectionError):
        # requests nests the socket error deep inside; its last clause is the useful part.
        text = _one_line(err, 1000)
        cause = re.search(r"(\[Errno [^\]]+\][^')\"]*|Name or service not known|Connection refused|Temporary failure in name resolution)", text)
        return f"connection failed ({cause.group(1).strip()})" if cause else "connection failed"
    return _one_line(err) or type(err).__name__


# ---- reading ----------------------------------------------------------------------------------


def is_hdf5_path(path: str | Path) -> bool:
    path = Path(path)
    return path.suffix.lower() in HDF5_SUFFIXES


@dataclass(frozen=True)
class _Schema:
    count: int
    height: int
    width: int
    has_labels: bool


def _open(path: Path):
    import h5py

    if not path.exists():
        raise GalcolorError(f"{path}: no such file")
    if path.is_dir():
        raise GalcolorError(f"{path}: is a folder, not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        reason = "not an HDF5 file" if "signature" in str(err).lower() else f"cannot open as HDF5 ({_one_line(err, 100)})"
        raise GalcolorError(f"{path}: {reason}") from None


def _check_schema(path: Path, handle) -> _Schema:
    import h5py

    expected = "expected a dataset 'images' of shape (N, H, W, 3), dtype uint8"
    images = handle.get("images")
    if not isinstance(images, h5py.Dataset):
        found = ", ".join(sorted(handle.keys())[:8]) or "nothing"
        raise GalcolorError(f"{path}: no 'images' dataset (found: {found}); {expected}")
    if images.ndim != 4 or images.shape[3] != 3:
        raise GalcolorError(f"{path}: 'images' has shape {images.shape}; {expected}")
    if images.dtype != np.uint8:
        raise GalcolorError(f"{path}: 'images' has dtype {images.dtype}; {expected}")
    count, height, width = images.shape[:3]
    if count == 0 or height == 0 or width == 0:
        raise GalcolorError(f"{path}: 'images' is empty (shape {images.shape})")
    labels = handle.get("ans")
    if labels is not None:
        if not isinstance(labels, h5py.Dataset) or labels.shape != (count,) or labels.dtype.kind not in "iu":
            shape = getattr(labels, "shape", "?")
            dtype = getattr(labels, "dtype", "?")
            raise GalcolorError(f"{path}: 'ans' has shape {shape} and dtype {dtype}; expected ({count},) integers, one label per image")
    return _Schema(count, height, width, labels is not None)


def _read_rows(dataset, indices: np.ndarray) -> np.ndarray:
    """dataset[indices] for sorted unique indices, in slices so h5py reads runs, not single rows."""
    if len(indices) == 0:
        return np.empty((0, *dataset.shape[1:]), dtype=dataset.dtype)
    if np.array_equal(indices, np.arange(indices[0], indices[0] + len(indices))):
        return dataset[int(indices[0]) : int(indices[-1]) + 1]
    return dataset[indices.tolist()]  # h5py fancy indexing wants an increasing list


def _spread(count: int, wanted: int | None) -> np.ndarray:
    """`wanted` indices evenly spread over range(count) (all when None): files sorted by class still mix."""
    if wanted is None or wanted >= count:
        return np.arange(count)
    if wanted < 1:
        raise GalcolorError(f"max_images must be at least 1, got {wanted}")
    return np.unique(np.linspace(0, count - 1, wanted).round().astype(np.int64))


def iter_hdf5_images(
    path: str | Path, indices: np.ndarray | None = None, chunk: int = READ_CHUNK
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Yield (indices, uint8 images (n, H, W, 3), labels (n,) or None) chunk by chunk, for sorted `indices`."""
    path = Path(path)
    with _open(path) as handle:
        schema = _check_schema(path, handle)
        indices = np.arange(schema.count) if indices is None else np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= schema.count or np.any(np.diff(indices) <= 0)):
            raise ValueError("indices must be sorted, unique and within the file")
        images, labels = handle["images"], handle["ans"] if schema.has_labels else None
        for start in range(0, len(indices), chunk):
            part = indices[start : start + chunk]
            try:
                pixels = _read_rows(images, part)
                part_labels = _read_rows(labels, part).astype(np.int64) if labels is not None else None
            except OSError as err:  # a truncated or damaged file shows up only when its chunks are read
                raise GalcolorError(f"{path}: damaged HDF5 data ({_one_line(err, 100)})") from None
            yield part, pixels, part_labels


def read_hdf5_images(path: str | Path, max_images: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 images (N, H, W, 3) and int64 labels (N,) (None without an 'ans' dataset) from a Galaxy10-style file.

    With `max_images`, that many images evenly spread over the file are read (and only they are
    held in memory). A wrong layout raises GalcolorError naming the file.
    """
    path = Path(path)
    with _open(path) as handle:
        schema = _check_schema(path, handle)
    indices = _spread(schema.count, max_images)
    out = np.empty((len(indices), schema.height, schema.width, 3), dtype=np.uint8)
    labels = np.empty(len(indices), dtype=np.int64) if schema.has_labels else None
    filled = 0
    for _, pixels, part_labels in iter_hdf5_images(path, indices):
        out[filled : filled + len(pixels)] = pixels
        if labels is not None:
            labels[filled : filled + len(pixels)] = part_labels
        filled += len(pixels)
    return out, labels


def load_hdf5_split(
    path: str | Path,
    split: str,
    val_fraction: float = 0.15,
    max_images: int | None = None,
    progress: bool = True,
    label_map: dict[int, int] | None = GALAXY10_SPIRAL_LABELS,
) -> "GalaxySet":
    """Like galcolor.data.load_split, for an HDF5 file: one split's colour images as a GalaxySet.

    Image i is known by the relative path ``<file stem>/<i:05d>``, so the train/val split is the same
    hash-of-the-name rule as for folders (stable on every machine), and `max_images` takes the same
    hash-ordered subset. Labels go through `label_map` (Galaxy10 classes -> 1 spiral / 0 smooth / None).
    """
    import torch
    from tqdm import tqdm

    from .data import SPLITS, GalaxySet, _hash_fraction, split_of

    if split not in SPLITS:
        raise GalcolorError(f"unknown split {split!r}: choose from {', '.join(SPLITS)}")
    path = Path(path)
    with _open(path) as handle:
        schema = _check_schema(path, handle)
    relatives = [PurePosixPath(path.stem, f"{i:05d}") for i in range(schema.count)]
    chosen = range(schema.count)
    if max_images is not None:
        chosen = sorted(chosen, key=lambda i: _hash_fraction(relatives[i]))[:max_images]
    indices = np.array(sorted(i for i in chosen if split == "all" or split_of(relatives[i], val_fraction) == split), dtype=np.int64)

    dataset = GalaxySet([], [], [], [])
    with tqdm(total=len(indices), desc=f"loading {split}", unit="img", disable=not progress, leave=False) as bar:
        for part, pixels, labels in iter_hdf5_images(path, indices):
            for row, index in enumerate(part.tolist()):
                image = pixels[row]
                if int((image.max(axis=2).astype(np.int16) - image.min(axis=2)).max()) <= 1:
                    dataset.skipped.append(f"{path}[{index}]: grey image, no colour to learn from")
                    continue
                dataset.images.append(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous())
                raw = int(labels[row]) if labels is not None else None
                dataset.labels.append(None if raw is None or label_map is None else label_map.get(raw))
                dataset.relatives.append(relatives[index])
            bar.update(len(part))
    if not dataset.images:
        raise GalcolorError(
            f"{path}: no usable colour images in the {split} split ({schema.count} images in the file, "
            f"{len(indices)} chosen, {len(dataset.skipped)} unusable)"
        )
    return dataset
