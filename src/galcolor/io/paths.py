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


def find_inputs(inputs: Sequence[str | Path], out_dir: Path | None = None,
                skipped: list[tuple[Path, str]] | None = None) -> tuple[list[tuple[Path, PurePosixPath]], list[Path]]:
    """Expand files and folders into (file, output-relative path without suffix) pairs, plus missing args.

    Folders are walked recursively, skipping hidden names and `out_dir` (a run's output folder
    inside its input folder holds its own earlier outputs, not inputs), and following symbolic
    links to files and folders. A file reached twice (a link to another input, a file given twice)
    is an input once, under its own name where it has one rather than a link's; a linked folder
    already searched, or holding one (a loop), is not searched again. Each thing left out so, and
    each broken link or special file with an image's name, is appended to `skipped` as (path, reason).
    """
    skipped_folder = Path(out_dir).resolve() if out_dir is not None else None
    candidates: list[tuple[bool, Path, PurePosixPath]] = []  # (reached through a link, file, relative)
    missing: list[Path] = []
    walked: set[Path] = set()
    left_out = skipped if skipped is not None else []

    def walk(root: Path, top: Path) -> None:
        """Search `top` (under `root`, which names outputs) without following links, then its linked folders."""
        linked: list[Path] = []
        for folder, dirnames, filenames in os.walk(top):
            walked.add(Path(folder).resolve())
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and Path(folder, d).resolve() != skipped_folder)
            linked += [Path(folder, d) for d in dirnames if Path(folder, d).is_symlink()]  # searched after every real folder
            dirnames[:] = [d for d in dirnames if not Path(folder, d).is_symlink()]
            rel_folder = Path(folder).relative_to(root).parts
            for name in sorted(filenames):
                file = Path(folder, name)
                if name.startswith("."):
                    continue
                if file.is_symlink() and not file.exists():  # a file or a folder once: either may have held inputs
                    left_out.append((file, f"{file}: symbolic link to {os.readlink(file)}, which does not exist; skipped"))
                    continue
                if not is_image_path(name):
                    continue
                if not file.is_file():
                    left_out.append((file, f"{file}: not a regular file; skipped"))
                    continue
                candidates.append((file.is_symlink() or top != root, file, PurePosixPath(*rel_folder, _without_suffix(name))))
        for link in linked:
            real = link.resolve()
            if any(seen.is_relative_to(real) for seen in walked):
                left_out.append((link, f"{link}: symbolic link to {real}, a folder already searched or holding one (a loop); skipped"))
            else:
                walk(root, link)

    for arg in inputs:
        root = Path(arg)
        if not root.exists():  # also catches symlinks whose target is gone
            missing.append(root)
        elif not root.is_dir():
            candidates.append((False, root, PurePosixPath(_without_suffix(root.name))))
        else:
            walk(root, root)
    found: list[tuple[Path, PurePosixPath]] = []
    first: dict[Path, Path] = {}
    for _, file, relative in sorted(candidates, key=lambda candidate: candidate[0]):  # stable: files by their own name first
        target = file.resolve()
        if target in first:
            how = f"symbolic link to {target}" if file.is_symlink() else "the same file"
            left_out.append((file, f"{file}: {how}, already an input as {first[target]}; skipped"))
            continue
        first[target] = file
        found.append((file, relative))
    found.sort(key=lambda pair: (pair[1].as_posix(), str(pair[0])))
    return found, missing


def output_path(out_dir: Path, relative: PurePosixPath | str, suffix: str = ".png") -> Path:
    """``out_dir / relative`` + suffix, refusing anything that would land outside out_dir."""
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or "\\" in str(rel):
        raise GalcolorError(f"{relative}: output path would escape the output folder {out_dir}")
    return Path(out_dir).joinpath(*rel.parts[:-1], rel.name + suffix)
