"""Fit a model's caution: where its training survey ends and other images begin (see caution.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from tqdm import tqdm

from ..color.lab import rgb_to_lab
from ..errors import GalcolorError, InputError
from ..inference.predict import network_output
from ..io.decode import read_image
from ..io.paths import find_inputs
from ..models.caution import FAR_PERCENTILE, Caution, SurveyCaution, pooled_features
from ..models.checkpoint import SATURATION_KEY, LoadedModel, save_model
from .data import load_folders


def features_of(model: LoadedModel, images: Iterable[np.ndarray], progress: bool = False, desc: str = "features") -> torch.Tensor:
    """(N, C) pooled bottleneck features of (H, W, 3) float RGB images in [0, 1], each seen whole."""
    rows = []
    for rgb in tqdm(list(images), desc=desc, unit="img", disable=not progress, leave=False):
        tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
        with torch.inference_mode(), pooled_features(model.network) as features:
            network_output(model, rgb_to_lab(tensor)[:, :1])
        rows.append(features.mean()[0])
    return torch.stack(rows)


def calibrate(
    model: LoadedModel,
    data_dirs: list[Path],
    other_dirs: list[Path],
    val_fraction: float = 0.15,
    far_percentile: float = FAR_PERCENTILE,
    progress: bool = True,
    log: Callable[[str], None] = print,
    survey_names: list[str] | None = None,
) -> Caution | SurveyCaution:
    """Caution for `model`: a Gaussian over the features of the train split of data_dirs (what it
    was trained on: one folder per survey, for a model of several), full colour within their val
    split's spread, none as far out as `other_dirs`' images. With `survey_names` (each folder's
    survey, one of a model of several surveys'), one Gaussian per survey (SurveyCaution)."""
    if survey_names is not None:
        unknown = sorted(set(survey_names) - set(model.config.surveys))
        if unknown:
            known = ", ".join(model.config.surveys) or "none: it was not trained on named surveys"
            raise GalcolorError(f"{model.source}: --surveys {', '.join(unknown)} is not among its surveys ({known})")
    train = load_folders(data_dirs, "train", val_fraction, progress=progress, survey_names=survey_names)
    val = load_folders(data_dirs, "val", val_fraction, progress=progress, survey_names=survey_names)
    others = []
    found, _ = find_inputs([Path(d) for d in other_dirs])
    for path, _relative in found:
        try:
            others.append(read_image(path).rgb)
        except InputError as err:
            log(f"skipped {err}")
    if len(others) < 5:
        raise GalcolorError(f"{', '.join(map(str, other_dirs))}: need at least 5 readable images unlike the training survey, found {len(others)}")
    as_float = lambda dataset: (image.permute(1, 2, 0).numpy() / np.float32(255.0) for image in dataset.images)  # noqa: E731
    train_features = features_of(model, as_float(train), progress, "train features")
    val_features = features_of(model, as_float(val), progress, "val features")
    other_features = features_of(model, others, progress, "other features")
    try:
        if survey_names is None:
            return Caution.fit(train_features, val_features, other_features, far_percentile)
        surveys = [name for name in model.config.surveys if name in survey_names]
        if len(surveys) != len(model.config.surveys):
            missing = ", ".join(sorted(set(model.config.surveys) - set(surveys)))
            raise GalcolorError(f"{model.source}: a caution per survey needs images of each of its surveys; none of {missing}")
        by_survey = lambda features, dataset, name: features[torch.tensor([s == name for s in dataset.surveys])]  # noqa: E731
        return SurveyCaution.fit([by_survey(train_features, train, name) for name in surveys],
                                 [by_survey(val_features, val, name) for name in surveys], other_features, far_percentile)
    except ValueError as err:
        raise GalcolorError(f"{model.source}: cannot calibrate caution: {err}") from None


def save_calibrated(model: LoadedModel, caution: Caution | SurveyCaution, out: Path, sources: dict,
                    default_saturation: float | None = None) -> None:
    """Write `model` with its caution, and with a new default saturation where one is given."""
    metadata = {**model.metadata, "caution_calibration": {**sources, "limits": caution.limits.tolist()}}
    if default_saturation is not None:
        metadata[SATURATION_KEY] = float(default_saturation)
    save_model(dataclasses.replace(model, metadata=metadata, caution=caution), out)
