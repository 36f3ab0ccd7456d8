"""The deterministic train/val split by a hash of each image's relative path, and the in-memory set of images."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import torch

from ..errors import GalcolorError

SPLITS = ("train", "val", "all")

_SPIRAL_FOLDERS = {"spirals", "spiral"}

_NON_SPIRAL_FOLDERS = {"non_spirals", "non-spirals", "nonspirals", "non_spiral", "ellipticals"}


def split_of(relative: PurePosixPath, val_fraction: float) -> str:
    """'val' or 'train', decided by a hash of the path relative to the data folder.

    Stable across machines, listing order and dataset growth: adding images never moves an old one.
    """
    return "val" if _hash_fraction(relative) < val_fraction else "train"


def _hash_fraction(relative: PurePosixPath) -> float:
    digest = hashlib.sha256(str(relative).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def label_of(relative: PurePosixPath) -> int | None:
    """1 for a spiral, 0 for a non-spiral, None when the folder names don't say."""
    parts = {p.lower() for p in relative.parts[:-1]}
    if parts & _SPIRAL_FOLDERS:
        return 1
    if parts & _NON_SPIRAL_FOLDERS:
        return 0
    return None


@dataclass
class GalaxySet:
    images: list[torch.Tensor]  # each (3, H, W) uint8 sRGB
    labels: list[int | None]
    relatives: list[PurePosixPath]
    skipped: list[str]  # one line per unusable file
    sampling_weights: list[float] | None = None  # per image; None: every image once per epoch
    surveys: list[str] = field(default_factory=list)  # per image: the survey that rendered it (its folder's name by default)

    def __len__(self) -> int:
        return len(self.images)

    def survey_names(self) -> list[str]:
        """The surveys present, in order of first appearance."""
        return list(dict.fromkeys(self.surveys))


def survey_ids(dataset: GalaxySet, surveys: tuple[str, ...]) -> torch.Tensor | None:
    """(N,) each image's index in `surveys` (a conditioned model's), or None for a model without surveys."""
    if not surveys:
        return None
    unknown = sorted(set(dataset.surveys) - set(surveys))
    if unknown:
        raise GalcolorError(f"the model is conditioned on {', '.join(surveys)}; the data also holds {', '.join(unknown)}")
    if len(surveys) < 2:
        raise GalcolorError(f"survey conditioning needs images of at least two surveys; all are {surveys[0]} "
                            "(give several data folders, or name their surveys with --surveys)")
    return torch.tensor([surveys.index(survey) for survey in dataset.surveys], dtype=torch.long)
