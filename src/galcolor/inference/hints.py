"""Colour hints from the user: a galaxy's mean colour known from a catalogue (`--galaxy-colour A,B`) or
read off a colour image of the same galaxy (`--colour-from REF`, of any size or survey), used instead
of the galaxy-colour stage's estimate. A list file may give each input its own reference."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..color.lab import rgb_array_to_lab
from ..errors import GalcolorError, InputError
from ..io.decode import read_image
from ..models.galaxy_colour import flux_weighted_mean

MIN_REFERENCE_CHROMA = 0.5  # ab units: a reference whose galaxy is this close to neutral carries no colour to take


def parse_galaxy_colour(text: str) -> tuple[float, float]:
    """'A,B' -> (a*, b*), both finite."""
    parts = text.replace(" ", "").split(",")
    try:
        a, b = (float(part) for part in parts)
    except ValueError:
        raise GalcolorError(f"galaxy colour {text!r}: give the mean a* and b* as two numbers, A,B (e.g. -2,8)") from None
    if not (np.isfinite(a) and np.isfinite(b)):
        raise GalcolorError(f"galaxy colour {text!r}: a* and b* must be finite numbers")
    return a, b


def colour_of_reference(path: str | Path) -> tuple[float, float]:
    """The flux-weighted mean (a*, b*) over the galaxy (L > 15) of a colour image; a one-line
    GalcolorError naming the file for one that is unreadable, grey, or holds no galaxy."""
    path = Path(path)
    try:
        decoded = read_image(path)
    except InputError as err:
        raise GalcolorError(f"colour reference {err}") from None
    if not decoded.is_colour:
        raise GalcolorError(f"colour reference {path}: a grey image; --colour-from needs a colour image of the galaxy")
    return colour_of_image(decoded.rgb, f"colour reference {path}")


def colour_of_image(rgb: np.ndarray, name: str = "colour reference") -> tuple[float, float]:
    """(H, W, 3) float sRGB in [0, 1] -> its galaxy's flux-weighted mean (a*, b*); GalcolorError
    (starting with `name`) when it holds no galaxy or its galaxy is grey."""
    lab = torch.from_numpy(rgb_array_to_lab(rgb)).permute(2, 0, 1)[None]  # (1, 3, H, W)
    mean, weight = flux_weighted_mean(lab[:, :1], lab[:, 1:])
    if float(weight[0]) <= 0:
        raise GalcolorError(f"{name}: no galaxy in it (no pixel brighter than L 15)")
    a, b = (float(v) for v in mean[0])
    if np.hypot(a, b) < MIN_REFERENCE_CHROMA:
        raise GalcolorError(f"{name}: its galaxy is grey (mean chroma {np.hypot(a, b):.2f}); no colour to take")
    return a, b


def read_reference_list(path: str | Path) -> dict[Path, Path]:
    """A list file of `INPUT,REFERENCE` lines (CSV; '#' starts a comment) -> {input: reference}, each
    resolved against the list file's folder when relative."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise GalcolorError(f"colour reference list {path}: cannot be read ({err.__class__.__name__})") from None
    base = path.parent
    pairs: dict[Path, Path] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 2:
            raise GalcolorError(f"colour reference list {path}, line {number}: give INPUT,REFERENCE")
        source, reference = (Path(cell.strip()) for cell in row)
        pairs[(base / source).resolve()] = base / reference if not reference.is_absolute() else reference
    if not pairs:
        raise GalcolorError(f"colour reference list {path}: no INPUT,REFERENCE lines")
    return pairs


def with_hints(model, jobs: list, galaxy_colour: str | None, colour_from: Path | None):
    """`colorize --galaxy-colour` / `--colour-from`: (the model, the jobs) with one hint for every input
    (read before any is coloured, so a bad one stops the run at once), or a list file's reference per
    input (pipeline.Job.hint; a bad reference fails its input alone, inputs not listed keep the stage's)."""
    if galaxy_colour is not None:
        return model.with_galaxy_colour(parse_galaxy_colour(galaxy_colour)), jobs
    if colour_from is None:
        return model, jobs
    if Path(colour_from).suffix.lower() not in (".csv", ".txt"):
        return model.with_galaxy_colour(colour_of_reference(colour_from)), jobs
    references = read_reference_list(colour_from)
    hinted, read = [], {}
    for job in jobs:
        reference = references.get(job.source.resolve())
        if reference is None:
            hinted.append(job)
            continue
        if reference not in read:
            try:
                read[reference] = (colour_of_reference(reference), None)
            except GalcolorError as err:
                read[reference] = (None, f"{job.source}: {err}")
        hint, problem = read[reference]
        hinted.append(dataclasses.replace(job, hint=hint, hint_error=problem))
    return model, hinted
