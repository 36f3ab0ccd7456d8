"""Colour galaxy images from folders held in memory as uint8, epoch order, and sky-respecting crops."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
import torch
from tqdm import tqdm

from ..errors import GalcolorError, InputError
from ..io.decode import read_image
from ..io.paths import find_inputs
from .split import SPLITS, GalaxySet, _hash_fraction, label_of, split_of


SPIRAL_KINDS = {"spirals": 1, "non_spirals": 0}  # --only's choices, as split.label_of labels them


def images_to_score(dataset: GalaxySet, only: str | None = None) -> tuple[list[np.ndarray], list[int | None], list[str]]:
    """A split's (H, W, 3) uint8 images, labels and relative paths, as evaluation.score_images takes them;
    `only` ('spirals' or 'non_spirals') keeps those alone."""
    keep = [i for i, label in enumerate(dataset.labels) if only is None or label == SPIRAL_KINDS[only]]
    return ([dataset.images[i].permute(1, 2, 0).numpy() for i in keep], [dataset.labels[i] for i in keep],
            [str(dataset.relatives[i]) for i in keep])


def read_colour(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 sRGB of a colour image: a truth to learn from or score against. InputError
    for a file that cannot be read, and for a grey one (it holds no colour)."""
    decoded = read_image(path)
    if not decoded.is_colour:
        raise InputError(path, "grey image, no colour to learn from")
    return np.round(decoded.rgb * 255.0).astype(np.uint8)


def load_split(
    data_dir: Path,
    split: str,
    val_fraction: float = 0.15,
    max_images: int | None = None,
    progress: bool = True,
    report_dir: Path | None = None,
    survey: str | None = None,
) -> GalaxySet:
    """Decode the colour images of one split into memory (uint8: 1,400 SDSS cutouts take 275 MB).
    `report_dir`, when inside data_dir, is left out: its figures are not galaxies. Every image is
    labelled with `survey`, by default the folder's (or HDF5 file's) name."""
    if not 0.0 < val_fraction < 1.0:
        raise GalcolorError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    if split not in SPLITS:
        raise GalcolorError(f"unknown split {split!r}: choose from {', '.join(SPLITS)}")
    data_dir = Path(data_dir)
    if data_dir.is_file() and data_dir.suffix.lower() in (".h5", ".hdf5", ".he5"):
        from .hdf5 import load_hdf5_split

        dataset = load_hdf5_split(data_dir, split, val_fraction, max_images, progress)
        dataset.surveys = [survey or data_dir.stem] * len(dataset)
        return dataset
    if not data_dir.is_dir():
        raise GalcolorError(f"{data_dir}: not a folder of images")
    found, _ = find_inputs([data_dir], report_dir)
    if max_images is not None:
        # A subset in hash order mixes all folders (spirals and non-spirals alike), unlike a prefix.
        # Its own salted hash: ordering by the split's hash would take the val images first.
        found = sorted(found, key=lambda item: _hash_fraction(PurePosixPath("subset") / item[1]))[:max_images]
    chosen = [(f, r) for f, r in found if split == "all" or split_of(r, val_fraction) == split]
    if found and not chosen:
        raise GalcolorError(
            f"{data_dir}: none of its {len(found)} image files falls in the {split} split "
            f"(val_fraction {val_fraction}); use more images or another split"
        )
    dataset = GalaxySet([], [], [], [])
    for path, relative in tqdm(chosen, desc=f"loading {split}", unit="img", disable=not progress, leave=False):
        try:
            pixels = read_colour(path)
        except InputError as err:
            dataset.skipped.append(str(err))
            continue
        dataset.images.append(torch.from_numpy(pixels).permute(2, 0, 1).contiguous())
        dataset.labels.append(label_of(relative))
        dataset.relatives.append(relative)
    dataset.surveys = [survey or data_dir.resolve().name] * len(dataset)
    if not dataset.images:
        raise GalcolorError(
            f"{data_dir}: no usable colour images in the {split} split "
            f"({len(found)} image files found, {len(dataset.skipped)} unusable)"
        )
    return dataset


def load_folders(
    data_dirs: list[Path],
    split: str,
    val_fraction: float = 0.15,
    max_images: int | None = None,
    progress: bool = True,
    folder_weights: list[float] | None = None,
    survey_names: list[str] | None = None,
) -> GalaxySet:
    """One split of several folders (e.g. several surveys) as one set. Each folder's share of a
    training epoch is its weight over the sum of weights, however many images it holds; without
    weights a single folder is read as load_split reads it. Each folder's images are labelled with
    its survey: `survey_names[i]` for folder i (two folders may name one survey), else the
    folder's own name. The hash split is made within each folder, so every survey holds out its
    own share."""
    data_dirs = [Path(d) for d in data_dirs]
    if folder_weights is not None and len(folder_weights) != len(data_dirs):
        raise GalcolorError(f"{len(folder_weights)} folder weights for {len(data_dirs)} data folders: give one weight per folder")
    if survey_names is not None and len(survey_names) != len(data_dirs):
        raise GalcolorError(f"{len(survey_names)} survey names for {len(data_dirs)} data folders: give one name per folder")
    surveys = list(survey_names) if survey_names is not None else [None] * len(data_dirs)
    if folder_weights is not None and (min(folder_weights) < 0 or sum(folder_weights) <= 0):
        raise GalcolorError("folder weights must not be negative, and at least one must be positive")
    if len(data_dirs) == 1 and folder_weights is None:
        return load_split(data_dirs[0], split, val_fraction, max_images, progress, survey=surveys[0])
    for folder in data_dirs:  # a mistyped folder is an error, not "a survey with nothing in one split"
        if not folder.exists():
            raise GalcolorError(f"{folder}: no such folder")
    weights = folder_weights or [1.0] * len(data_dirs)
    merged = GalaxySet([], [], [], [], [])
    for number, (folder, weight, survey) in enumerate(zip(data_dirs, weights, surveys)):
        try:
            part = load_split(folder, split, val_fraction, max_images, progress, survey=survey)
        except GalcolorError as err:  # a small survey may have nothing in one split; the others still count
            merged.skipped.append(str(err))
            continue
        prefix = PurePosixPath(f"{number}-{folder.name}")  # two folders may share a name
        merged.images += part.images
        # A folder that is itself "spirals" labels its images, as it would one level up.
        merged.labels += [label_of(PurePosixPath(folder.name) / r) if label is None else label
                          for label, r in zip(part.labels, part.relatives)]
        merged.relatives += [prefix / relative for relative in part.relatives]
        merged.skipped += part.skipped
        merged.surveys += part.surveys
        merged.sampling_weights += [weight / len(part)] * len(part)
    if not merged.images:
        raise GalcolorError(f"no usable colour images in the {split} split of any of {', '.join(map(str, data_dirs))}")
    return merged


def epoch_order(dataset: GalaxySet, generator: torch.Generator) -> list[int]:
    """The images of one epoch, in order: a permutation, or as many weighted draws (with
    replacement) when the folders carry weights."""
    if dataset.sampling_weights is None:
        return torch.randperm(len(dataset), generator=generator).tolist()
    weights = torch.tensor(dataset.sampling_weights, dtype=torch.float64)
    return torch.multinomial(weights, len(dataset), replacement=True, generator=generator).tolist()


def augment_crop(image: torch.Tensor, crop: int, jitter: float, generator: torch.Generator) -> torch.Tensor:
    """A random rotation by k*90 degrees, a random flip, and a crop near the centre.

    Only transforms that a telescope could have produced: the sky has no up, no handedness, and a
    galaxy cutout keeps its galaxy near the middle. Images smaller than `crop` are padded with black sky.
    """
    draws = torch.rand(4, generator=generator).tolist()
    image = torch.rot90(image, k=int(draws[0] * 4) % 4, dims=(1, 2))
    if draws[1] < 0.5:
        image = torch.flip(image, dims=(2,))
    _, height, width = image.shape
    if height < crop or width < crop:
        padded = torch.zeros((3, max(height, crop), max(width, crop)), dtype=image.dtype)
        top, left = (padded.shape[1] - height) // 2, (padded.shape[2] - width) // 2  # galaxy stays central
        padded[:, top : top + height, left : left + width] = image
        image, height, width = padded, padded.shape[1], padded.shape[2]
    top = _jittered_start(height - crop, jitter, draws[2])
    left = _jittered_start(width - crop, jitter, draws[3])
    return image[:, top : top + crop, left : left + crop]


def _jittered_start(margin: int, jitter: float, draw: float) -> int:
    centre = margin / 2.0
    return int(round(centre + (2.0 * draw - 1.0) * jitter * centre))


def training_batches(
    dataset: GalaxySet, batch_size: int, crop: int, jitter: float, generator: torch.Generator
):
    """Yield (image indices, (B, 3, crop, crop) uint8 batch) for one epoch, the order and crops drawn
    from `generator`. The indices let the trainer see the whole image a crop came from."""
    order = epoch_order(dataset, generator)
    # Full batches only (batch norm dislikes a last batch of one); a set smaller than one batch is one batch.
    for start in range(0, max(1, len(order) // batch_size) * batch_size, batch_size):
        indices = order[start : start + batch_size]
        yield indices, torch.stack([augment_crop(dataset.images[i], crop, jitter, generator) for i in indices])


def lightness_lut(dataset: GalaxySet, to_lab) -> torch.Tensor:
    """(101, 2) mean ab for each integer L over the dataset: the `lut` baseline."""
    sums = torch.zeros(101, 2, dtype=torch.float64)
    counts = torch.zeros(101, dtype=torch.float64)
    for image in dataset.images:
        lab = to_lab(image[None].float() / 255.0)[0]  # (3, H, W)
        index = lab[0].round().clamp(0, 100).long().flatten()
        counts.index_add_(0, index, torch.ones_like(index, dtype=torch.float64))
        sums.index_add_(0, index, lab[1:].flatten(1).T.double())
    return (sums / counts.clamp(min=1)[:, None]).float()
