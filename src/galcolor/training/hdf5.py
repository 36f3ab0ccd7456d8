"""Reading Galaxy10-style HDF5 files.

The layout read here is Galaxy10's: a dataset ``images`` of shape (N, H, W, 3), uint8 sRGB, and
optionally ``ans`` (N,) integer class labels. Reading is by slices, so a subset never needs the whole
3.5 GB of pixels in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from ..errors import GalcolorError
from .download import _one_line

if TYPE_CHECKING:
    from .split import GalaxySet


HDF5_SUFFIXES: frozenset[str] = frozenset({".h5", ".hdf5", ".he5"})

# Images read per h5py call: 256 Galaxy10 cutouts are 50 MB, so memory stays bounded while reading.
READ_CHUNK = 256

# Galaxy10 classes: 0 disturbed, 1 merging, 2 round smooth, 3 in-between round smooth, 4 cigar-shaped smooth,
# 5 barred spiral, 6 unbarred tight spiral, 7 unbarred loose spiral, 8 edge-on without bulge, 9 edge-on with bulge.
# galcolor's evaluation labels: 1 spiral, 0 non-spiral (smooth), None when neither (mergers, edge-on discs).
GALAXY10_CLASSES: tuple[str, ...] = (
    "disturbed", "merging", "round smooth", "in-between round smooth", "cigar-shaped smooth",
    "barred spiral", "unbarred tight spiral", "unbarred loose spiral", "edge-on without bulge", "edge-on with bulge",
)

GALAXY10_SPIRAL_LABELS: dict[int, int] = {2: 0, 3: 0, 4: 0, 5: 1, 6: 1, 7: 1}


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

    from .split import SPLITS, GalaxySet, _hash_fraction, split_of

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
