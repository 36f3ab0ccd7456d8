"""Fit the galaxy-colour stage: every training galaxy as a 64 x 64 thumbnail of its own L (or of the
canonical lightness the colour network sees), and its true flux-weighted mean (a*, b*) as the target,
for the survey that rendered it.

Thumbnails are cheap (8,070 SDSS galaxies take 66 MB as float16), so the stage sees every galaxy
many times in a few minutes of a 2-core CPU, where the U-Net's global pathway sees each a few times
in hours. It holds out the same hash split per folder as `train`, and is measured there beside the
`lut` baseline's integrated colour (evaluation.metrics' colour_r reads the same quantity).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..color.lab import normalise_lightness, rgb_to_lab
from ..color.lightness import canonical_lightness
from ..errors import GalcolorError
from ..evaluation.metrics import pearson_r
from ..models.checkpoint import LoadedModel, save_model
from ..models.device import autocast
from ..inference.predict import predict_ab
from ..models.galaxy_colour import GalaxyColourNet, flux_weighted_mean, thumbnail
from .data import load_folders
from .split import GalaxySet


@dataclass
class Thumbnails:
    """What the stage learns from: (N, 1, 64, 64) float16 thumbnails, (N, 2) true mean ab,
    (N, 2) the `lut` baseline's mean ab, and (N,) each image's survey index."""

    images: torch.Tensor
    targets: torch.Tensor
    lut_targets: torch.Tensor
    surveys: torch.Tensor
    network_targets: torch.Tensor | None = None  # (N, 2) the colour network's own mean ab, where measured

    def __len__(self) -> int:
        return len(self.targets)


def survey_indices(model: LoadedModel, dataset: GalaxySet) -> tuple[list[str], list[int]]:
    """The stage's survey names (the colour network's, or one unnamed survey) and each image's index among them."""
    names = list(model.config.surveys) or ["all"]
    if not model.config.surveys:
        return names, [0] * len(dataset)
    unknown = sorted(set(dataset.surveys) - set(names))
    if unknown:
        raise GalcolorError(f"{model.source or 'the model'} knows the surveys {', '.join(names)}; the data also holds "
                            f"{', '.join(unknown)} (name each folder's survey with --surveys)")
    return names, [names.index(survey) for survey in dataset.surveys]


def make_thumbnails(model: LoadedModel, dataset: GalaxySet, progress: bool = True, canonical: bool = False,
                    with_network: bool = False) -> Thumbnails:
    """Each image's thumbnail of its own L (canonical: of the lightness the colour network sees), and
    its true and `lut` mean colour (with_network: also the colour network's own, at full strength,
    without caution or stage). Images without signal pixels are left out: they have no galaxy colour
    to learn."""
    _, indices = survey_indices(model, dataset)
    images, targets, lut_targets, surveys, network_targets = [], [], [], [], []
    bare = dataclasses.replace(model.with_style(0.0, 1.0), galaxy_colour=None, galaxy_colour_hint=None)
    with torch.inference_mode():
        for image, survey in tqdm(zip(dataset.images, indices), total=len(dataset), desc="thumbnails", unit="img",
                                  disable=not progress, leave=False):
            lab = rgb_to_lab(image[None].float() / 255.0)  # (1, 3, H, W)
            lightness = lab[:, :1]
            target, weight = flux_weighted_mean(lightness, lab[:, 1:])
            if float(weight[0]) <= 0:
                continue
            seen = canonical_lightness(lightness, model.lightness_reference) if canonical and model.lightness_reference is not None else lightness
            images.append(thumbnail(normalise_lightness(seen)).half())
            targets.append(target)
            lut_targets.append(flux_weighted_mean(lightness, lut_colour(model, lightness))[0] if model.lut_ab is not None
                               else torch.zeros(1, 2))
            if with_network:
                network_targets.append(flux_weighted_mean(lightness, predict_ab(bare.with_survey(model.config.surveys[survey]) if model.config.surveys
                                                                                else bare, lightness).cpu())[0])
            surveys.append(survey)
    if not images:
        raise GalcolorError("no images with signal pixels (L > 15) to fit the galaxy colour on")
    return Thumbnails(torch.cat(images), torch.cat(targets), torch.cat(lut_targets), torch.tensor(surveys, dtype=torch.long),
                      torch.cat(network_targets) if with_network else None)


def lut_colour(model: LoadedModel, lightness: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) L -> (B, 2, H, W) the `lut` baseline's ab: the training set's mean ab at each integer L."""
    table = model.lut_ab.float()  # (101, 2)
    index = lightness[:, 0].round().long().clamp(0, len(table) - 1)  # (B, H, W)
    return table[index].permute(0, 3, 1, 2)


def _augmented(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A flip and a quarter turn, drawn per batch: a galaxy's colour does not depend on its orientation."""
    turns = int(torch.randint(4, (1,), generator=generator))
    flipped = bool(torch.randint(2, (1,), generator=generator))
    images = torch.rot90(images, turns, (2, 3))
    return images.flip(3) if flipped else images


def fit_stage(train: Thumbnails, surveys: int, steps: int = 12_000, batch_size: int = 32, lr: float = 2e-3, width: int = 24,
              seed: int = 0, progress: bool = True, canonical: bool = False) -> GalaxyColourNet:
    """Train a stage on thumbnails: AdamW with a one-cycle schedule, smooth L1 on each survey's
    standardised targets, the image's own survey's output only."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    stage = GalaxyColourNet(surveys, width, canonical)
    centre, spread = torch.zeros(surveys, 2), torch.ones(surveys, 2)
    for index in range(surveys):
        own = train.targets[train.surveys == index]
        if len(own):
            centre[index] = own.mean(0)
            spread[index] = own.std(0).clamp_min(1.0) if len(own) > 1 else 1.0
    stage.centre.copy_(centre)
    stage.spread.copy_(spread)
    optimiser = torch.optim.AdamW(stage.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    standardised = (train.targets - centre[train.surveys]) / spread[train.surveys]  # (N, 2)
    stage.train()
    rows = torch.arange(batch_size)
    for _ in tqdm(range(steps), desc="galaxy colour", unit="step", disable=not progress, leave=False):
        chosen = torch.randint(len(train), (batch_size,), generator=generator)
        x = _augmented(train.images[chosen].float(), generator)
        with autocast(x.device):
            predicted = stage.standardised(x)  # (B, S, 2)
        loss = F.smooth_l1_loss(predicted[rows[: len(chosen)], train.surveys[chosen]].float(), standardised[chosen])
        if not math.isfinite(loss.item()):
            raise GalcolorError("the galaxy-colour stage's loss is not finite (try a lower --lr)")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    return stage.eval()


def estimates(stage: GalaxyColourNet, thumbnails: Thumbnails, batch_size: int = 256) -> torch.Tensor:
    """(N, 2) the stage's mean ab of each thumbnail, as the image's own survey renders it."""
    parts = []
    with torch.inference_mode():
        for start in range(0, len(thumbnails), batch_size):
            part = slice(start, start + batch_size)
            per_survey = stage(thumbnails.images[part].float())  # (b, S, 2)
            parts.append(per_survey[torch.arange(per_survey.shape[0]), thumbnails.surveys[part]])
    return torch.cat(parts)


def scores(stage: GalaxyColourNet, val: Thumbnails, names: list[str]) -> dict[str, dict[str, float]]:
    """Per survey: r(a*), r(b*) and the mean |error| of the mean ab, for the stage, for `lut` and, where
    measured, for the colour network's own colour."""
    predicted = estimates(stage, val)
    table: dict[str, dict[str, float]] = {}
    for index, name in enumerate(names):
        own = val.surveys == index
        if not own.any():
            continue
        truth = val.targets[own].numpy()
        row = {"images": int(own.sum())}
        guesses = [("stage", predicted[own].numpy()), ("lut", val.lut_targets[own].numpy())]
        if val.network_targets is not None:
            guesses.append(("network", val.network_targets[own].numpy()))
        for label, guess in guesses:
            row[f"{label}_r_a"] = pearson_r(guess[:, 0], truth[:, 0])
            row[f"{label}_r_b"] = pearson_r(guess[:, 1], truth[:, 1])
            row[f"{label}_error"] = float(np.linalg.norm(guess - truth, axis=1).mean())
        table[name] = row
    return table


def fit_and_save(model: LoadedModel, data_dirs: list[Path], out: Path, survey_names: list[str] | None, steps: int,
                 val_fraction: float, canonical: bool = False, progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """`galcolor fit-galaxy-colour`: fit on the train split of data_dirs, score on their val split, write
    the model with its stage."""
    data_dirs = [Path(d) for d in data_dirs]
    train_set = load_folders(data_dirs, "train", val_fraction, progress=progress, survey_names=survey_names)
    val_set = load_folders(data_dirs, "val", val_fraction, progress=progress, survey_names=survey_names)
    for line in train_set.skipped + val_set.skipped:
        log(f"skipped {line}")
    names, _ = survey_indices(model, train_set)
    began = time.perf_counter()
    train, val = make_thumbnails(model, train_set, progress, canonical), make_thumbnails(model, val_set, progress, canonical, with_network=True)
    stage = fit_stage(train, len(names), steps, progress=progress, canonical=canonical)
    seconds = time.perf_counter() - began
    table = scores(stage, val, names)
    # The stage sets a survey's galaxy colour only where it is nearer the truth than the colour network's own
    # on that survey's held-out galaxies (on the shipped model's Hubble images it was not).
    with torch.no_grad():
        stage.trust.copy_(torch.tensor([float(name in table and table[name]["stage_error"] < table[name]["network_error"]) for name in names]))
    for name, trusted in zip(names, stage.trust.tolist()):
        if name in table:
            table[name]["trusted"] = bool(trusted)
    metadata = {**model.metadata, "galaxy_colour": {
        "data": [str(d) for d in data_dirs], "surveys": survey_names, "steps": steps, "input": "canonical" if canonical else "own",
        "train_images": len(train),
        "val_images": len(val), "seconds": round(seconds, 1), "val": table}}
    save_model(dataclasses.replace(model, galaxy_colour=stage, metadata=metadata), out)
    return {"out": str(out), "train_images": len(train), "val_images": len(val), "seconds": round(seconds, 1), "val": table}
