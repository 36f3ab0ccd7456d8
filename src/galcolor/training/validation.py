"""Validation metrics over a held-out split, each image coloured whole at its own size."""

from __future__ import annotations

import numpy as np
import torch

from ..color.lab import lab_array_to_rgb8, normalise_ab
from ..evaluation.metrics import MetricAccumulator
from ..inference.predict import colorize_tensor
from ..models.checkpoint import LoadedModel
from .losses import weighted_ab_loss
from .split import GalaxySet


def survey_key(survey: str, metric: str) -> str:
    """The name of one survey's figure in a validation summary and log.csv: 'decals/de00_fg'."""
    return f"{survey}/{metric}"


def validate(model: LoadedModel, dataset: GalaxySet, batch_size: int, sky_weight: float, given_survey: bool = True) -> dict[str, float]:
    """Metrics of design.md over a split, each image coloured whole at its own size. Where the
    split holds several surveys, each survey's metrics follow too (survey_key), since a survey's
    rendering decides its colour and a pooled figure hides the smaller surveys.

    given_survey: a survey-conditioned model colours each image as its own survey (what
    `--survey NAME` gives); otherwise as the model is set (auto: the survey it recognises)."""
    accumulator = MetricAccumulator()
    added_surveys = []  # the survey of each image in the order it was scored
    losses = []
    model.network.eval()
    by_size: dict[tuple[tuple[int, ...], str | None], list[int]] = {}
    as_given = given_survey and bool(model.config.surveys) and bool(dataset.surveys)
    for index, image in enumerate(dataset.images):
        by_size.setdefault((tuple(image.shape), dataset.surveys[index] if as_given else None), []).append(index)
    for (_, survey), indices in by_size.items():
        colouring = model.with_survey(survey) if as_given else model
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            rgb8 = torch.stack([dataset.images[i] for i in chunk])
            pred_lab, true_lab = colorize_tensor(colouring, rgb8.float() / 255.0)
            losses.append(
                weighted_ab_loss(normalise_ab(pred_lab[:, 1:]), normalise_ab(true_lab[:, 1:]), true_lab[:, :1], sky_weight).item()
            )
            for j, i in enumerate(chunk):
                pred = pred_lab[j].permute(1, 2, 0).cpu().numpy()
                true = true_lab[j].permute(1, 2, 0).cpu().numpy()
                truth_rgb8 = dataset.images[i].permute(1, 2, 0).numpy()
                accumulator.add(true, pred, truth_rgb8, lab_array_to_rgb8(pred), dataset.labels[i])
                added_surveys.append(dataset.surveys[i] if dataset.surveys else None)
    summary = accumulator.summary()
    summary["val_loss"] = float(np.mean(losses))
    surveys = list(dict.fromkeys(added_surveys))
    if len(surveys) > 1:
        for survey in surveys:
            part = accumulator.subset([k for k, s in enumerate(added_surveys) if s == survey])
            summary.update({survey_key(survey, metric): value for metric, value in part.summary().items()})
    return summary
