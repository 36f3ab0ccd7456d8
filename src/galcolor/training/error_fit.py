"""Fit a regression model's error head on the frozen network's errors over its training split."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from ..color.lab import rgb_to_lab
from ..errors import GalcolorError
from ..evaluation.metrics import SIGNAL_L
from ..inference.expected_error import _expected_from, _watched_pass
from ..models.checkpoint import LoadedModel, save_model
from ..models.error_head import ErrorHead, laplace_loss
from .data import load_folders
from .split import GalaxySet

SKY_WEIGHT = 0.1  # sky pixels count a little: the map must not be nonsense there, but galaxies are what is scored


def fit_error_head(model: LoadedModel, images: GalaxySet, epochs: int = 3, batch_size: int = 8, lr: float = 3e-3,
                   seed: int = 0, progress: bool = True) -> ErrorHead:
    """Fit a head to the frozen network's errors on `images` (its training split: the head must learn
    the errors the network makes, and the validation split stays free to measure it)."""
    if model.bins is not None:
        raise GalcolorError(f"{model.source}: a classification model has its own uncertainty (the spread of its bins)")
    if not images.images:
        raise GalcolorError("no images to fit the error head on")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head: ErrorHead | None = None
    optimiser: torch.optim.Optimizer | None = None
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=generator).tolist()
        starts = range(0, len(order), batch_size)
        for start in tqdm(starts, desc=f"error head {epoch + 1}/{epochs}", unit="batch", disable=not progress, leave=False):
            for lab in _lab_batches([images.images[i] for i in order[start:start + batch_size]]):
                predicted_ab, seen = _watched_pass(model, lab[:, :1])
                if head is None:
                    head = ErrorHead(seen["last"].shape[1], seen["context"].shape[1])
                    optimiser = torch.optim.AdamW(head.parameters(), lr=lr)
                error = (lab[:, 1:] - predicted_ab).norm(dim=1, keepdim=True)
                weight = torch.where(lab[:, :1] > SIGNAL_L, 1.0, SKY_WEIGHT)
                loss = laplace_loss(head(seen["last"], seen["context"], predicted_ab), error, weight)
                if not math.isfinite(loss.item()):
                    raise GalcolorError(f"{model.source}: the error head's loss is not finite")
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
    return head.eval()


def _lab_batches(images: list[torch.Tensor]) -> list[torch.Tensor]:
    """(3, H, W) uint8 images -> one (B, 3, H, W) Lab batch per image size among them."""
    by_size: dict[tuple[int, ...], list[torch.Tensor]] = {}
    for image in images:
        by_size.setdefault(tuple(image.shape), []).append(image)
    with torch.no_grad():
        return [rgb_to_lab(torch.stack(group).float() / 255.0) for group in by_size.values()]


def error_correlation(model: LoadedModel, images: GalaxySet, pixels_per_image: int = 4000) -> float:
    """Spearman correlation, over signal pixels pooled across images, between the expected and the actual error."""
    from scipy.stats import spearmanr

    if model.error_head is None:
        raise GalcolorError(f"{model.source or 'this model'}: no error head to measure")
    expected, actual = [], []
    for index, image in enumerate(images.images):
        (lab,) = _lab_batches([image])
        predicted_ab, seen = _watched_pass(model, lab[:, :1])
        guess = _expected_from(model, predicted_ab, seen)[0, 0].numpy().ravel()
        error = (lab[0, 1:] - predicted_ab[0]).norm(dim=0).numpy().ravel()
        signal = np.flatnonzero(lab[0, 0].numpy().ravel() > SIGNAL_L)
        if signal.size == 0:
            continue
        chosen = np.random.default_rng(index).choice(signal, size=min(signal.size, pixels_per_image), replace=False)
        expected.append(guess[chosen])
        actual.append(error[chosen])
    if not expected:
        raise GalcolorError("no signal pixels to measure the error head on")
    return float(spearmanr(np.concatenate(expected), np.concatenate(actual)).statistic)


def fit_and_save(model: LoadedModel, data_dirs: list[Path], out: Path, epochs: int, val_fraction: float, progress: bool = True,
                 log: Callable[[str], None] = print) -> dict:
    """`galcolor fit-uncertainty`: fit on the train split of data_dirs (the folders the model was
    trained on), measure on their val split, write the model with its head."""
    data_dirs = [Path(d) for d in data_dirs]
    train = load_folders(data_dirs, "train", val_fraction, progress=progress)
    val = load_folders(data_dirs, "val", val_fraction, progress=progress)
    for line in train.skipped + val.skipped:
        log(f"skipped {line}")
    head = fit_error_head(model, train, epochs, progress=progress)
    fitted = model.with_error_head(head)
    spearman = error_correlation(fitted, val)
    metadata = {**model.metadata, "error_head": {"data": [str(d) for d in data_dirs], "epochs": epochs, "val_spearman": round(spearman, 4)}}
    save_model(dataclasses.replace(fitted, metadata=metadata), out)
    return {"out": str(out), "val_spearman": spearman, "train_images": len(train), "val_images": len(val)}
