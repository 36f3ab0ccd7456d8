"""The Python API: load a model and colour numpy arrays or PIL images."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..color.lab import lab_array_to_rgb8
from ..errors import GalcolorError
from ..inference.arrays import as_rgb_float, colorize_lab
from ..inference.hints import colour_of_image, colour_of_reference
from ..inference.science_outputs import science_of
from ..models.checkpoint import LoadedModel, load_checkpoint, stored_config
from ..models.device import resolve_device

SHIPPED_MODEL = "galcolor-unet.safetensors"


def shipped_model_path() -> Path:
    return Path(str(resources.files("galcolor") / "weights" / SHIPPED_MODEL))


def load_model(path: str | Path | None = None, device: str = "auto") -> LoadedModel:
    """Load a galcolor checkpoint (the shipped model when `path` is None); no other flags needed."""
    return load_checkpoint(Path(path) if path is not None else shipped_model_path(), resolve_device(device))


def shipped_surveys() -> tuple[str, ...]:
    """The surveys whose colour style the shipped model can imitate (`--survey NAME`)."""
    return stored_config(shipped_model_path()).surveys


def colorize(image, model: LoadedModel | str | Path | None = None, survey: str | None = None,
             galaxy_colour: tuple[float, float] | None = None, colour_from=None, science: bool = False):
    """Colour one image from its lightness alone; returns uint8 RGB of the same height and width.

    `model` is a loaded model, a checkpoint's path, or None for the shipped model. A colour input
    is reduced to its L first, so the result can be checked against the original. `survey`: the
    survey whose colour style to imitate, one of `model.config.surveys` (your decision: its colour
    is then not faded by caution), or "auto" for the survey the model recognises in the image; None
    keeps the model's own setting (auto unless set with `model.with_survey`).
    `galaxy_colour`: the galaxy's flux-weighted mean (a*, b*), known from a catalogue, say;
    `colour_from`: a colour image of the same galaxy (a path, an array or a PIL image, any size) to
    take it from. Either replaces the galaxy-colour stage's estimate.
    `science=True` returns Colourised(rgb, science, starforming) instead: the image, what its colour
    says (the columns of `colorize --science`, docs/science.md) and the (H, W) labels of its candidate
    star-forming regions (0 outside, k inside the k-th)."""
    model = load_model(model) if isinstance(model, (str, Path)) else (model or _default_model())
    if survey is not None:
        model = model.with_survey(survey)
        if model.survey is not None:
            model = model.with_style(caution_strength=0.0)
    if galaxy_colour is not None and colour_from is not None:
        raise GalcolorError("give galaxy_colour or colour_from, not both")
    if colour_from is not None:
        galaxy_colour = (colour_of_reference(colour_from) if isinstance(colour_from, (str, Path))
                         else colour_of_image(as_rgb_float(colour_from)))
    if galaxy_colour is not None:
        model = model.with_galaxy_colour(tuple(galaxy_colour))
    verdicts: list = []
    predicted, _ = colorize_lab(as_rgb_float(image), model, verdicts)
    if not science:
        return lab_array_to_rgb8(predicted)
    reading, regions = science_of(model, predicted, verdicts[0] if verdicts else None)
    return Colourised(lab_array_to_rgb8(predicted), reading.as_dict(), regions)


class Colourised(NamedTuple):
    """galcolor.colorize(..., science=True): the coloured image, what its colour says, its star-forming regions."""

    rgb: np.ndarray
    science: dict
    starforming: np.ndarray


_cached_default: LoadedModel | None = None


def _default_model() -> LoadedModel:
    global _cached_default
    if _cached_default is None:
        _cached_default = load_model()
    return _cached_default
