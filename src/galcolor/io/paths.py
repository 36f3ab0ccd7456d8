"""Finding input images in files and folders, and where each one's outputs go."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from ..errors import GalcolorError



IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp",
     ".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz", ".fit.fz", ".fz"}  # .fz: fpack tile compression
)

# Longest first, so "a.fits.gz" loses ".fits.gz" rather than just ".gz".
_SUFFIXES_LONGEST_FIRST = sorted(IMAGE_SUFFIXES, key=len, reverse=True)


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


def find_inputs(inputs: Sequence[str | Path], out_dir: Path | None = None) -> tuple[list[tuple[Path, PurePosixPath]], list[Path]]:
    """Expand files and folders into (file, output-relative path without suffix) pairs, plus missing args.

    Folders are walked recursively, skipping hidden names and `out_dir` (a run's output folder
    inside its input folder holds its own earlier outputs, not inputs); symlinked folders are not
    descended (they can form loops), symlinked files are followed and de-duplicated by their target.
    """
    skipped_folder = Path(out_dir).resolve() if out_dir is not None else None
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
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and Path(folder, d).resolve() != skipped_folder)
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
