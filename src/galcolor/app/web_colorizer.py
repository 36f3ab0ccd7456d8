"""The web app's work behind the page: which models it offers, which controls each model uses, and
colouring one upload into the files the page shows (grey, colour, uncertainty) with a one-line
status saying what decided its colour; errors become one line in the page, never a traceback."""

from __future__ import annotations

import os

# Before Gradio is imported: no telemetry, no version check against api.gradio.app.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import dataclasses
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..color.style import styled
from ..errors import GalcolorError, InputError
from ..inference.hints import colour_of_image, parse_galaxy_colour
from ..inference.pipeline import colour_note
from ..inference.science_outputs import science_of, science_sentence
from ..io.atomic import write_png
from ..io.decode import read_image
from ..io.paths import IMAGE_SUFFIXES
from ..models.checkpoint import AUTO_SURVEY, stored_config

if TYPE_CHECKING:
    from ..inference.predict import Verdict
    from ..models.checkpoint import LoadedModel

try:
    import gradio as gr
except ImportError:  # the optional extra is missing; build_app says how to install it
    gr = None

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 50_000_000
# A 50 MB upload may still decode to a giant image; 50 Mpx (about 7000 x 7000) keeps two
# concurrent requests within a few GB of memory. The CLI's --max-pixels default is 200 Mpx.
WEB_MAX_PIXELS = 50_000_000
SHIPPED_KEY = "shipped"


def _require_gradio():
    if gr is None:
        raise GalcolorError("the web app needs Gradio, which is not installed: pip install 'galcolor[web]'")
    return gr


def uses_temperature(config) -> bool:
    """Whether a model's temperature control does anything: only a classification head has one."""
    return config.head == "classify"


@dataclass(frozen=True)
class ModelChoice:
    key: str  # the dropdown's value; the client can only pick among these keys, never send a path
    label: str
    path: Path


def model_choices(model_path: Path | None) -> list[ModelChoice]:
    """The shipped model (when its file exists) and the launch-time `model_path`; the first is the default."""
    from .api import shipped_model_path

    choices = []
    if model_path is not None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise GalcolorError(f"{model_path}: no such model file")
        choices.append(ModelChoice(key="launch", label=f"{model_path.parent.name}/{model_path.name}".lstrip("/"), path=model_path))
    shipped = shipped_model_path()
    if shipped.is_file() and not (model_path is not None and model_path.resolve() == shipped.resolve()):
        choices.append(ModelChoice(key=SHIPPED_KEY, label=f"shipped model ({shipped.stem})", path=shipped))
    if not choices:
        raise GalcolorError(f"no model to serve: the shipped model {shipped} is missing; pass a checkpoint with --model")
    return choices


def known_surveys(choices: list[ModelChoice]) -> list[str]:
    """Every survey any offered model was trained on, in order of first appearance."""
    return list(dict.fromkeys(name for choice in choices for name in stored_config(choice.path).surveys))


def _display_name(path: Path) -> str:
    return path.name or str(path)


def _stem(name: str) -> str:
    lower = name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return name[: -len(suffix)]
    return Path(name).stem or "image"


def _md_escape(text: str) -> str:
    """A file name shown as literal text in Markdown (a user may name a file `[x](http://...)`)."""
    return "".join("\\" + c if c in "\\`*_{}[]()<>#+-.!|~" else c for c in text)


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.3g} MB"


def what_decided(verdict: "Verdict | None", survey_named: bool) -> str:
    """Sentences, each with a leading space, on what decided an image's colour: the survey it was coloured
    as (named by the user, or recognised with its probability), then pipeline.colour_note's caution and
    galaxy colour. '' when nothing but the network decided it."""
    if verdict is None:
        return ""
    text = ""
    if verdict.survey is not None:
        text = (f" Coloured as {verdict.survey} renders galaxies." if survey_named
                else f" Survey auto: it looks most like {verdict.survey} ({verdict.survey_probability:.0%}).")
    # colour_note would name the survey again, and a named one as if recognised with certainty.
    rest = colour_note(dataclasses.replace(verdict, survey=None))
    if rest:
        text += f" {rest[0].upper()}{rest[1:]}."
    return text


class Colorizer:
    """The app's colour function, callable without a browser: (upload path, model key, temperature,
    style, survey, galaxy colour hint, colour reference path) -> outputs.

    Returns (grey PNG path, colour PNG path, the same PNG path for download, uncertainty map PNG
    path or None, a status line). The temperature applies to classification models; 0 keeps the
    model's own (chosen on its validation split). The style is one of style.STYLES, as `--style`;
    a survey named (not auto) is the user's decision, so style auto then colours without caution,
    as `colorize --survey` does. The galaxy colour ("A,B", the mean a* and b*) or a colour image of
    the same galaxy replaces the model's estimate of the galaxy's mean colour.
    Every problem the user can cause raises ``gradio.Error`` with one line naming the file.
    """

    def __init__(
        self,
        choices: list[ModelChoice],
        *,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        max_pixels: int = WEB_MAX_PIXELS,
        device: str = "auto",
        output_root: Path | None = None,
    ):
        self.choices = {choice.key: choice for choice in choices}
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels
        self.device = device
        self._output_root = output_root
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def model(self, key: str) -> "LoadedModel":
        from .api import load_model

        choice = self.choices.get(key)
        if choice is None:
            raise GalcolorError(f"unknown model {key!r}: choose one from the list")
        with self._lock:  # two first requests must not load the same checkpoint twice
            if key not in self._models:
                self._models[key] = load_model(choice.path, self.device)
            return self._models[key]

    def output_folder(self) -> Path:
        """A fresh folder under Gradio's temp folder (never elsewhere), so each result keeps its own name."""
        root = Path(self._output_root) if self._output_root is not None else Path(_require_gradio().utils.get_upload_folder())
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="galcolor-", dir=root))

    # The hints default to None, not '': Gradio's API client then lets a script leave them out.
    def __call__(self, file_path: str | Path | None, model_key: str | None = None, temperature: float = 0.0, style: str = "auto",
                 survey: str = AUTO_SURVEY, galaxy_colour: str | None = None, colour_reference: str | Path | None = None):
        gradio = _require_gradio()
        if not file_path:
            raise gradio.Error("Choose an image file first (JPEG, PNG, TIFF or FITS).", print_exception=False)
        path = Path(file_path)
        name = _display_name(path)
        try:
            hint = self.hint(galaxy_colour, colour_reference)
            return self._colorize(path, name, model_key or next(iter(self.choices)), temperature, style or "auto", survey or AUTO_SURVEY, hint)
        except InputError as err:  # the temp path means nothing to the user: name the file they chose
            raise gradio.Error(f"{name}: {err.problem}", print_exception=False) from None
        except GalcolorError as err:
            raise gradio.Error(str(err).replace(str(path), name), print_exception=False) from None
        except MemoryError:
            raise gradio.Error(f"{name}: not enough memory to colour this image", print_exception=False) from None
        except Exception as err:  # a bug or a broken model: one line for the user, the traceback in the server log
            log.exception("colouring %s failed", path)
            reason = " ".join(str(err).split())[:160] or type(err).__name__
            raise gradio.Error(f"{name}: could not colour this image ({type(err).__name__}: {reason})", print_exception=False) from None

    def on_choice_change(self, file_path: str | Path | None, model_key: str | None, temperature: float = 0.0, style: str = "auto",
                         survey: str = AUTO_SURVEY, galaxy_colour: str | None = None, colour_reference: str | Path | None = None):
        """Re-colour the current upload with the newly chosen model, style, survey or hint; nothing to do before an upload."""
        if not file_path:
            gradio = _require_gradio()
            return (gradio.skip(),) * 5
        return self(file_path, model_key, temperature, style, survey, galaxy_colour, colour_reference)

    def controls(self, model_key: str | None, survey: str = AUTO_SURVEY):
        """Updates of (temperature slider, survey control) for this model: each shown only where it does
        something (a temperature for a classification head, a survey for a model trained on named surveys);
        a survey the model does not know goes back to auto."""
        gradio = _require_gradio()
        choice = self.choices.get(model_key) or next(iter(self.choices.values()))
        config = stored_config(choice.path)
        kept_survey = survey if survey in config.surveys else AUTO_SURVEY
        return gradio.update(visible=uses_temperature(config)), gradio.update(visible=bool(config.surveys), value=kept_survey)

    def hint(self, galaxy_colour: str | None, colour_reference: str | Path | None) -> tuple[float, float] | None:
        """The user's galaxy colour (a*, b*) from the text field or the reference image; None without either."""
        text = (galaxy_colour or "").strip()
        if text and colour_reference:
            raise GalcolorError("give a galaxy colour or a colour reference image, not both: clear one of them")
        if text:
            return parse_galaxy_colour(text)  # its range is checked by LoadedModel.with_galaxy_colour
        if not colour_reference:
            return None
        path = Path(colour_reference)
        label = f"colour reference {_display_name(path)}"
        try:
            self._check_upload_size(path)
            decoded = read_image(path, max_pixels=self.max_pixels, limit_name="this server's limit")
        except InputError as err:  # the temp path means nothing to the user
            raise GalcolorError(f"{label}: {err.problem}") from None
        if not decoded.is_colour:
            raise GalcolorError(f"{label}: a grey image; the colour reference must be a colour image of the same galaxy")
        return colour_of_image(decoded.rgb, label)

    def _check_upload_size(self, path: Path) -> None:
        try:
            size = path.stat().st_size
        except OSError:
            return  # read_image names the problem
        if size > self.max_upload_bytes:
            raise InputError(path, f"file is {_megabytes(size)}, over this server's upload limit of {_megabytes(self.max_upload_bytes)}")

    def _colorize(self, path: Path, name: str, model_key: str, temperature: float = 0.0, style: str = "auto", survey: str = AUTO_SURVEY,
                  hint: tuple[float, float] | None = None):
        from ..color.lab import lab_array_to_rgb8
        from ..inference.arrays import colorize_lab
        from ..inference.diversity import extra_outputs, uncertainty_legend

        self._check_upload_size(path)
        decoded = read_image(path, max_pixels=self.max_pixels, limit_name="this server's limit")
        choice = self.choices.get(model_key)
        survey_named = survey != AUTO_SURVEY
        caution = 0.0 if style == "auto" and survey_named else None  # the sdss and muted presets keep their own
        model = styled(self.model(model_key), style, caution).with_survey(survey).with_galaxy_colour(hint)
        if temperature and model.bins is not None:
            model = model.with_temperature(float(temperature))
        began = time.perf_counter()
        verdicts: list[Verdict] = []
        predicted, input_lab = colorize_lab(decoded.rgb, model, verdicts)
        folder = self.output_folder()
        uncertainty_png, uncertainty_note = None, " No uncertainty map: this model has none (a classifier, or galcolor fit-uncertainty, gives one)."
        if model.has_uncertainty:
            try:
                uncertainty_map = extra_outputs(model, predicted, 0, True, 0)[".uncertainty.png"]
            except GalcolorError as err:  # e.g. too large for a per-bin distribution
                uncertainty_note = f" No uncertainty map: {err}."
            else:
                # Files in this request's own folder, not numpy arrays: Gradio caches arrays under a
                # hash of their content and rewrites that file while another request may be serving it.
                uncertainty_png = folder / f"{_stem(name)}.uncertainty.png"
                write_png(uncertainty_png, uncertainty_map)
                uncertainty_note = f" {uncertainty_legend(model)}."
        seconds = time.perf_counter() - began
        grey_lab = np.zeros_like(input_lab)
        grey_lab[..., 0] = input_lab[..., 0]
        grey_png = folder / f"{_stem(name)}.grey.png"
        write_png(grey_png, lab_array_to_rgb8(grey_lab))  # exactly the lightness the network saw
        colour = lab_array_to_rgb8(predicted)
        png = folder / f"{_stem(name)}.colorized.png"
        write_png(png, colour)
        height, width = colour.shape[:2]
        note = " Colour input: only its lightness was used." if decoded.is_colour else ""
        note += _md_escape(what_decided(verdicts[0] if verdicts else None, survey_named))
        note += " " + _md_escape(science_sentence(science_of(model, predicted, verdicts[0] if verdicts else None)[0]))
        status = f"**{_md_escape(name)}**: {width}×{height} px, coloured by {_md_escape(choice.label)} in {seconds:.1f} s.{note}{uncertainty_note}"
        return str(grey_png), str(png), str(png), str(uncertainty_png) if uncertainty_png else None, status


