"""Fitting a survey-conditioned network's recogniser on whole images: what `--survey auto` uses.

During training the recogniser learns from crops, but at inference it pools the bottleneck over a
whole frame, mostly sky around a small galaxy: features of another distribution, on which a
crop-trained recogniser guesses one survey for everything (measured: held-out SDSS and DECaLS
cutouts alike were "SDSS" at 0.98). So once the body is trained, the recogniser head alone is fitted
again on the pooled features of whole training images, each survey weighted equally, the way
`galcolor calibrate` fits caution on whole images.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..models.checkpoint import LoadedModel
from .calibrate import features_of
from .split import GalaxySet, survey_ids

FIT_STEPS = 400
FIT_LR = 1e-2


def whole_image_features(model: LoadedModel, dataset: GalaxySet, progress: bool = False) -> torch.Tensor:
    """(N, C) pooled bottleneck features of every image of `dataset`, each seen whole."""
    images = (image.permute(1, 2, 0).numpy().astype(np.float32) / 255.0 for image in dataset.images)
    model.network.eval()  # batch norm's running statistics, as at inference
    return features_of(model, images, progress=progress, desc="survey features").clone()  # a tensor autograd may use


def fit_recogniser(model: LoadedModel, dataset: GalaxySet, steps: int = FIT_STEPS, progress: bool = False) -> float:
    """Refit `model`'s recogniser head (in place) on `dataset`'s whole images; returns its balanced
    accuracy on them (the mean over surveys of the share recognised)."""
    surveys = model.config.surveys
    targets = survey_ids(dataset, surveys)
    features = whole_image_features(model, dataset, progress)
    head = model.network.conditioning.recogniser
    device = next(head.parameters()).device
    features, targets = features.to(device), targets.to(device)
    counts = torch.bincount(targets, minlength=len(surveys)).clamp(min=1).float()
    balance = counts.sum() / (len(surveys) * counts)  # each survey weighs the same, however many images it has
    optimizer = torch.optim.Adam(head.parameters(), lr=FIT_LR)
    with torch.enable_grad():
        for _ in range(steps):
            loss = F.cross_entropy(head(features), targets, weight=balance)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return balanced_accuracy(head(features).argmax(dim=1), targets, len(surveys))


@torch.no_grad()
def recognition_accuracy(model: LoadedModel, dataset: GalaxySet) -> dict[str, float]:
    """Each survey's share of `dataset`'s images that the recogniser names correctly, seen whole."""
    targets = survey_ids(dataset, model.config.surveys)
    head = model.network.conditioning.recogniser
    guesses = head(whole_image_features(model, dataset).to(next(head.parameters()).device)).argmax(dim=1).cpu()
    return {survey: float((guesses[targets == k] == k).float().mean()) for k, survey in enumerate(model.config.surveys)
            if (targets == k).any()}


def balanced_accuracy(guesses: torch.Tensor, targets: torch.Tensor, classes: int) -> float:
    shares = [(guesses[targets == k] == k).float().mean() for k in range(classes) if (targets == k).any()]
    return float(torch.stack(shares).mean())
