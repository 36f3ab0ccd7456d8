"""`galcolor fit-science`: how a model's colour reads as science, fitted on held-out galaxies.

Per survey: the true integrated b* that splits red galaxies from blue ones (Otsu's threshold of the
train split's true colours: a property of the survey, no model involved), and a logistic of the
model's own (full-strength) integrated b* for P(red), fitted on the val split. AUC does not depend on
that monotone map, so it is reported on the same galaxies; the probabilities' Brier score is
reported from a two-fold cross-fit, each half scored by the logistic fitted on the other. The blue
excess at which the model's colour marks a star-forming region is the one with the best F1 against
the truth's regions over every val galaxy.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy.optimize import minimize
from tqdm import tqdm

from ..color.lab import rgb_to_lab
from ..evaluation.metrics import roc_auc
from ..evaluation.science import PREDICTED_EXCESSES, RegionTally, red_threshold
from ..inference.predict import predict_ab
from ..inference.science import TRUE_EXCESS, ScienceCalibration, blue_excess, galaxy_mask, integrated_colour, regions_of, starforming_regions
from ..models.checkpoint import POINT_SOURCES_KEY, LoadedModel, save_model
from .data import load_folders

MIN_GALAXIES = 20  # a survey with fewer held-out galaxies, or fewer than MIN_CLASS of either colour, gets no P(red)
MIN_CLASS = 5


def logistic_fit(b: np.ndarray, red: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of P(red) = sigmoid(slope * b + intercept) by maximum likelihood, with a
    weak ridge so that perfectly separated galaxies still give a finite slope."""
    scale = float(np.std(b)) or 1.0

    def loss(params: np.ndarray) -> float:
        z = params[0] * b / scale + params[1]
        return float(np.mean(np.logaddexp(0.0, z) - red * z) + 1e-3 * params[0] ** 2)

    slope, intercept = minimize(loss, np.zeros(2), method="BFGS").x
    return float(slope / scale), float(intercept)


def cross_fit_brier(b: np.ndarray, red: np.ndarray) -> float:
    """Brier score of P(red) with each half of the galaxies scored by the logistic fitted on the other."""
    halves = np.arange(len(b)) % 2 == 0
    errors = []
    for fit_on in (halves, ~halves):
        slope, intercept = logistic_fit(b[fit_on], red[fit_on])
        p = 1.0 / (1.0 + np.exp(-(slope * b[~fit_on] + intercept)))
        errors.append((p - red[~fit_on]) ** 2)
    return float(np.mean(np.concatenate(errors)))


def fit_science(model: LoadedModel, data_dirs: list[Path], survey_names: list[str] | None, val_fraction: float = 0.15,
                progress: bool = True, log: Callable[[str], None] = print) -> tuple[ScienceCalibration, dict]:
    data_dirs = [Path(d) for d in data_dirs]
    train = load_folders(data_dirs, "train", val_fraction, progress=progress, survey_names=survey_names)
    val = load_folders(data_dirs, "val", val_fraction, progress=progress, survey_names=survey_names)
    for line in train.skipped + val.skipped:
        log(f"skipped {line}")
    true_train = _colours(train.images, train.surveys, progress, "train colours")
    thresholds = {s: red_threshold([b for b, survey in true_train if survey == s]) for s in sorted(set(train.surveys))}
    full = model.with_style(0.0, 1.0)  # the model's own colour: what `read_science` recovers from a delivered image
    regions = RegionTally(PREDICTED_EXCESSES)
    rows: dict[str, list[tuple[float, float]]] = {}
    for image, survey in tqdm(list(zip(val.images, val.surveys)), desc="held-out science", unit="img", disable=not progress, leave=False):
        true_lab = _lab(image)
        lightness = true_lab[..., 0]
        with torch.inference_mode():
            ab = predict_ab(full.with_survey(survey if survey in model.config.surveys else None),
                            torch.from_numpy(lightness)[None, None].float()).float().cpu()[0].permute(1, 2, 0).numpy()
        pred_lab = np.concatenate([lightness[..., None], ab], axis=-1)
        blue, galaxy = blue_excess(pred_lab, lightness), galaxy_mask(lightness)
        regions.add(*starforming_regions(true_lab, TRUE_EXCESS), [regions_of(blue, lightness, t, galaxy) for t in PREDICTED_EXCESSES])
        true_colour, pred_colour = integrated_colour(true_lab), integrated_colour(pred_lab)
        if true_colour is not None and pred_colour is not None:
            rows.setdefault(survey, []).append((true_colour[1], pred_colour[1]))
    logistic, report = {}, {}
    for survey, pairs in rows.items():
        true_b, pred_b = (np.array(v) for v in zip(*pairs))
        threshold = thresholds.get(survey, float("nan"))
        red = (true_b > threshold).astype(np.float64)
        entry = {"galaxies": len(pairs), "red_threshold_b": threshold, "red": int(red.sum()), "auc": roc_auc(pred_b, red.astype(int))}
        if len(pairs) >= MIN_GALAXIES and min(red.sum(), len(red) - red.sum()) >= MIN_CLASS:
            logistic[survey] = logistic_fit(pred_b, red)
            entry["brier_cross_fit"] = cross_fit_brier(pred_b, red)
            entry["brier_constant"] = float(np.mean((red.mean() - red) ** 2))  # the base rate's, for scale
        else:
            entry["note"] = f"fewer than {MIN_GALAXIES} held-out galaxies or {MIN_CLASS} of a colour: no P(red)"
        report[survey] = entry
    summary = regions.summary()
    calibration = ScienceCalibration({s: t for s, t in thresholds.items() if np.isfinite(t)}, logistic, float(summary["sf_threshold"]))
    return calibration, {"surveys": report, "starforming": {**summary, "true_regions": regions.true_regions,
                                                             "curve": regions.curve()}}


def fit_and_save(model: LoadedModel, data_dirs: list[Path], out: Path, survey_names: list[str] | None, val_fraction: float = 0.15,
                 progress: bool = True, log: Callable[[str], None] = print) -> dict:
    calibration, report = fit_science(model, data_dirs, survey_names, val_fraction, progress, log)
    # The model's stars keep their own colour, not the galaxy's: measured in docs/science.md.
    metadata = {**model.metadata, POINT_SOURCES_KEY: True, "science": {**calibration.as_metadata(), "data": [str(d) for d in data_dirs],
                                              "surveys": survey_names, "val": report}}
    save_model(dataclasses.replace(model, metadata=metadata), out)
    return {"out": str(out), **report, "starforming_excess": calibration.starforming_excess}


def _lab(image: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return rgb_to_lab(image.float()[None] / 255.0)[0].permute(1, 2, 0).numpy().astype(np.float64)


def _colours(images, surveys, progress: bool, desc: str) -> list[tuple[float, str]]:
    found = []
    for image, survey in tqdm(list(zip(images, surveys)), desc=desc, unit="img", disable=not progress, leave=False):
        colour = integrated_colour(_lab(image))
        if colour is not None:
            found.append((colour[1], survey))
    return found
