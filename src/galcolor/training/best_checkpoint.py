"""What training does to its best checkpoint once the epochs are done: a classifier's decoding
temperature is chosen on validation, and a survey-conditioned model's recogniser is fitted on whole
images; each is stored in the checkpoint with its validation figures."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..models.checkpoint import LoadedModel, load_checkpoint, save_model
from .recogniser import fit_recogniser, recognition_accuracy
from .split import GalaxySet
from .validation import survey_key, validate

SELECTION_METRIC = "de00_fg"  # `best` is the epoch with the lowest validation CIEDE2000 on galaxy pixels
TEMPERATURES = (0.2, 0.3, 0.38, 0.5, 0.7, 1.0)  # annealed-mean temperatures tried on validation


@dataclass(frozen=True)
class BestCheckpoint:
    path: Path
    device: torch.device
    batch_size: int
    sky_weight: float

    def load(self) -> LoadedModel:
        return load_checkpoint(self.path, self.device)

    def score(self, model: LoadedModel, dataset: GalaxySet, given_survey: bool = True) -> dict[str, float]:
        return validate(model, dataset, self.batch_size, self.sky_weight, given_survey=given_survey)


def choose_temperature(best: BestCheckpoint, val_set: GalaxySet, best_metrics: dict[str, float], log: Callable[[str], None],
                       candidates: tuple[float, ...] = TEMPERATURES) -> dict[str, float]:
    """Pick the annealed-mean temperature of the best checkpoint on the validation split
    (lowest de00_fg) and store it in that checkpoint's config; returns its metrics."""
    model = best.load()
    scores = {temperature: best.score(model.with_temperature(temperature), val_set) for temperature in candidates}
    chosen = min(scores, key=lambda t: scores[t][SELECTION_METRIC])
    meta = {**model.metadata, "val_metrics": scores[chosen], "temperature_scores": {str(t): m[SELECTION_METRIC] for t, m in scores.items()}}
    save_model(dataclasses.replace(model.with_temperature(chosen), metadata=meta), best.path)
    log(f"temperature {chosen} chosen on validation: de00_fg " + ", ".join(f"T={t}: {m[SELECTION_METRIC]:.2f}" for t, m in scores.items()))
    return scores[chosen]


def fit_best_recogniser(best: BestCheckpoint, train_set: GalaxySet, val_set: GalaxySet, best_metrics: dict[str, float],
                        log: Callable[[str], None]) -> dict[str, float]:
    """Fit the best checkpoint's survey recogniser on whole training images (recogniser.py), then
    score it as users run it, with --survey auto ('auto:' figures), beside the survey given."""
    model = best.load()
    fitted = fit_recogniser(model, train_set)
    recognised = recognition_accuracy(model, val_set)
    auto = best.score(model, val_set, given_survey=False)
    metrics = {**best_metrics, **{f"auto:{key}": value for key, value in auto.items()},
               **{survey_key(survey, "recognised"): share for survey, share in recognised.items()}}
    save_model(dataclasses.replace(model, metadata={**model.metadata, "val_metrics": metrics}), best.path)
    log(f"survey recogniser fitted on whole images (balanced accuracy {fitted:.2f} on train); on val, recognised: "
        + ", ".join(f"{survey} {share:.0%}" for survey, share in recognised.items())
        + f"; de00_fg with --survey auto {auto['de00_fg']:.2f}, with the survey given {best_metrics['de00_fg']:.2f}")
    return metrics
