"""Self-describing safetensors checkpoints: weights plus the config needed to rebuild the model.

Nothing here unpickles: weights, the optimizer's tensors and the baseline look-up table are plain
tensors, and everything else travels as JSON in the safetensors metadata.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .caution import Caution, SurveyCaution
from ..color.lab import denormalise_ab
from .config import ModelConfig, from_dict, to_dict
from .error_head import ErrorHead
from .galaxy_colour import GalaxyColourNet
from ..errors import GalcolorError
from ..io.atomic import atomic_write_bytes
from . import build_model
from ..color.quantize import AbBins
from ..color.style import MAX_SATURATION

FORMAT = "galcolor-checkpoint-1"
LUT_KEY = "baseline.lut_ab"  # (101, 2): mean training ab per integer L, the `lut` baseline
CENTRES_KEY, PRIOR_KEY = "quantize.centres", "quantize.prior"  # (Q, 2) and (Q,) of a classify head
REFERENCE_KEY = "lightness.reference"  # (256,) training L quantiles of a 'canonical' input model
# Metadata: the saturation the model colours with unless told otherwise, chosen on data for
# surveys of unknown colour strength (galcolor calibrate --saturation; 1 when absent).
SATURATION_KEY = "default_saturation"
# Metadata: {survey: saturation} measured per survey (a model of several surveys); the recognised
# surveys' mix applies unless the user sets one saturation.
SURVEY_SATURATION_KEY = "survey_saturation"
POINT_SOURCES_KEY = "point_sources_unshifted"
MAX_HINT_AB = 60.0  # a mean a* or b* beyond this is a typo, not a galaxy: few sRGB colours of galaxy lightness reach it
AUTO_SURVEY = "auto"  # --survey auto: colour as the survey the network recognises in the image


@dataclass
class LoadedModel:
    """A network ready for inference, with what it was trained on."""

    network: torch.nn.Module
    config: ModelConfig
    metadata: dict[str, Any] = field(default_factory=dict)
    lut_ab: torch.Tensor | None = None
    bins: AbBins | None = None
    source: Path | None = None
    lightness_reference: torch.Tensor | None = None
    caution: Caution | SurveyCaution | None = None
    caution_strength: float = 1.0
    """Colour is multiplied by caution.confidence ** caution_strength; 0 turns caution off."""
    saturation: float = 1.0
    """A last multiplier of ab: the colour style (1 the training survey's, below 1 more muted);
    loaded as the checkpoint's default saturation."""
    error_head: ErrorHead | None = None
    """A regression model's estimate of its own error per pixel (galcolor fit-uncertainty)."""
    survey: str | None = None
    """The survey whose style it colours in, one of config.surveys; None: the survey the network
    recognises in each image (auto)."""
    galaxy_colour: GalaxyColourNet | None = None
    """The galaxy-colour stage (galcolor fit-galaxy-colour): each galaxy's mean (a*, b*) from a thumbnail,
    to which the colour network's prediction is shifted."""
    survey_saturation: tuple[float, ...] | None = None
    """One saturation per survey of config.surveys (metadata survey_saturation), mixed by the recognised
    survey's weights; None: `saturation` for every image (also once the user sets a saturation)."""
    galaxy_colour_hint: tuple[float, float] | None = None
    """A user's (a*, b*) for the galaxy's flux-weighted mean colour, used instead of the stage's estimate."""

    @property
    def point_sources_unshifted(self) -> bool:
        """Whether point sources (foreground stars) keep the network's own colour rather than taking the
        galaxy's (metadata `point_sources_unshifted`, set by galcolor fit-science; docs/science.md)."""
        return bool(self.metadata.get(POINT_SOURCES_KEY, False))

    @property
    def cautious(self) -> bool:
        """Whether its colour fades on unfamiliar images: calibrated, and caution not switched off."""
        return self.caution is not None and self.caution_strength > 0

    def with_style(self, caution_strength: float | None = None, saturation: float | None = None) -> "LoadedModel":
        """The same model with another caution strength or saturation (None keeps the current one)."""
        strength = self.caution_strength if caution_strength is None else caution_strength
        chosen_saturation = self.saturation if saturation is None else saturation
        if not (0 <= strength < math.inf and 0 <= chosen_saturation <= MAX_SATURATION):
            raise GalcolorError(f"caution must be a finite number of at least 0 and saturation lie between 0 and {MAX_SATURATION:g}, "
                                f"got {strength} and {chosen_saturation}")
        per_survey = self.survey_saturation if saturation is None else None  # a saturation the user sets holds everywhere
        return dataclasses.replace(self, caution_strength=strength, saturation=chosen_saturation, survey_saturation=per_survey)

    def with_galaxy_colour(self, hint: tuple[float, float] | None) -> "LoadedModel":
        """The same model colouring each galaxy at this flux-weighted mean (a*, b*) (None: the stage's estimate)."""
        if hint is not None:
            a, b = (float(value) for value in hint)
            if not (math.isfinite(a) and math.isfinite(b) and abs(a) <= MAX_HINT_AB and abs(b) <= MAX_HINT_AB):
                raise GalcolorError(f"galaxy colour {hint[0]},{hint[1]}: a* and b* must be finite numbers within ±{MAX_HINT_AB:g}")
            hint = (a, b)
        return dataclasses.replace(self, galaxy_colour_hint=hint)

    def with_survey(self, survey: str | None) -> "LoadedModel":
        """The same model colouring as `survey` rendered images ('auto' or None: as the survey it recognises)."""
        if survey in (None, AUTO_SURVEY):
            return dataclasses.replace(self, survey=None)
        if survey not in self.config.surveys:
            known = f"one of {', '.join((AUTO_SURVEY, *self.config.surveys))}" if self.config.surveys else \
                f"{AUTO_SURVEY}: this model was not trained on named surveys"
            raise GalcolorError(f"unknown survey {survey!r} for {self.source or 'this model'}: choose {known}")
        return dataclasses.replace(self, survey=survey)

    def survey_weights(self, batch: int, device: torch.device) -> torch.Tensor | None:
        """(batch, S) one-hot weights of the chosen survey, or None to let the network recognise it."""
        if self.survey is None:
            return None
        weights = torch.zeros(batch, len(self.config.surveys), device=device)
        weights[:, self.config.surveys.index(self.survey)] = 1.0
        return weights

    def with_error_head(self, head: ErrorHead) -> "LoadedModel":
        return dataclasses.replace(self, error_head=head)

    @property
    def has_uncertainty(self) -> bool:
        """Whether it can say how unsure its colour is: a classifier's spread, or a fitted error head."""
        return self.bins is not None or self.error_head is not None

    def with_temperature(self, temperature: float) -> "LoadedModel":
        """The same classification model decoding with another annealed-mean temperature."""
        if self.bins is None:
            raise GalcolorError(f"{self.source}: --temperature applies to classification models only")
        if not 0.0 < temperature <= 1.0:
            raise GalcolorError(f"temperature must lie in (0, 1], got {temperature}")
        return dataclasses.replace(self, config=dataclasses.replace(self.config, temperature=temperature))

    def decode(self, output: torch.Tensor) -> torch.Tensor:
        """The network's output -> (B, 2, H, W) ab in Lab units."""
        if self.bins is None:
            return denormalise_ab(output.float())
        return self.bins.annealed_mean(output, self.config.temperature)


def save_checkpoint(
    path: Path,
    network: torch.nn.Module,
    config: ModelConfig,
    metadata: dict[str, Any] | None = None,
    lut_ab: torch.Tensor | None = None,
    bins: AbBins | None = None,
    lightness_reference: torch.Tensor | None = None,
    caution: Caution | SurveyCaution | None = None,
    error_head: ErrorHead | None = None,
    galaxy_colour: GalaxyColourNet | None = None,
) -> None:
    if config.input_lightness == "canonical" and lightness_reference is None:
        raise ValueError("a canonical-input model needs its lightness reference")
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    if caution is not None:
        tensors.update(caution.tensors())
    if error_head is not None:
        tensors.update(error_head.tensors())
    if galaxy_colour is not None:
        tensors.update(galaxy_colour.tensors())
    if lightness_reference is not None:
        tensors[REFERENCE_KEY] = lightness_reference.detach().cpu().float().contiguous()
    if lut_ab is not None:
        tensors[LUT_KEY] = lut_ab.detach().cpu().float().contiguous()
    if bins is not None:
        tensors[CENTRES_KEY] = bins.centres.detach().cpu().float().contiguous()
        tensors[PRIOR_KEY] = bins.prior.detach().cpu().float().contiguous()
    header = {
        "format": FORMAT,
        "model_config": json.dumps(to_dict(config)),
        "metadata": json.dumps(metadata or {}),
    }
    atomic_write_bytes(Path(path), save(tensors, metadata=header))


def save_model(model: LoadedModel, path: Path) -> None:
    """Write a loaded model again, with everything it carries (calibrate, fit-uncertainty and the
    temperature choice each change one part of it and keep the rest)."""
    save_checkpoint(Path(path), model.network, model.config, model.metadata, model.lut_ab, model.bins, model.lightness_reference,
                    model.caution, model.error_head, model.galaxy_colour)


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    if path.is_dir():
        best = path / "best.safetensors"
        hint = f"; its best checkpoint is {best}" if best.is_file() else ""
        raise GalcolorError(f"{path}: is a folder, not a model file{hint}")
    if not path.is_file():
        raise GalcolorError(f"{path}: no such model file")
    if path.suffix in (".pt", ".pth", ".ckpt", ".pkl"):
        raise GalcolorError(f"{path}: only .safetensors models are loaded (pickle files can run code)")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise GalcolorError(f"{path}: not a readable safetensors checkpoint ({err})") from None
    if header.get("format") != FORMAT:
        raise GalcolorError(f"{path}: not a galcolor checkpoint (no '{FORMAT}' header)")
    return tensors, header


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> LoadedModel:
    tensors, header = _read(path)
    if "model_config" not in header and Path(path).name.endswith(".state.safetensors"):
        raise GalcolorError(f"{path}: a training state (what train --resume continues from), not a model; "
                            f"use {Path(path).with_name('best.safetensors')}")
    try:
        # Checkpoints from before canonical lightness fed the network raw L.
        config = from_dict(ModelConfig, {"input_lightness": "raw", **json.loads(header["model_config"])})
        metadata = json.loads(header.get("metadata", "{}"))
    except (KeyError, json.JSONDecodeError, TypeError, AttributeError) as err:
        raise GalcolorError(f"{path}: checkpoint header is damaged ({err})") from None
    except GalcolorError as err:  # e.g. an architecture this version does not know
        raise GalcolorError(f"{path}: {err}") from None
    try:
        network = build_model(config)
    except ValueError as err:
        raise GalcolorError(f"{path}: {err}") from None
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        # The first line only names the class; the first specific problem is on the next one.
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        detail = detail if len(detail) <= 160 else detail[:159] + "…"
        raise GalcolorError(f"{path}: weights do not fit the stored architecture ({detail})") from None
    # Inference feeds the network channels-last input (infer.network_output); weights in the same
    # layout spare a reorder of activations at every layer: the shipped model ran 1.8x faster on
    # a CPU with bf16 units, with the same result.
    network.to(map_location).to(memory_format=torch.channels_last).eval()
    bins = AbBins(tensors[CENTRES_KEY], tensors[PRIOR_KEY]) if CENTRES_KEY in tensors else None
    if config.head == "classify" and bins is None:
        raise GalcolorError(f"{path}: a classify checkpoint without its ab bins ({CENTRES_KEY})")
    reference = tensors.get(REFERENCE_KEY)
    if config.input_lightness == "canonical" and reference is None:
        raise GalcolorError(f"{path}: a canonical-lightness checkpoint without its reference ({REFERENCE_KEY})")
    try:
        error_head = ErrorHead.from_tensors(tensors)
    except (RuntimeError, ValueError) as err:
        raise GalcolorError(f"{path}: its error head is damaged ({str(err).splitlines()[0]})") from None
    try:
        galaxy_colour = GalaxyColourNet.from_tensors(tensors)
    except (RuntimeError, ValueError) as err:
        raise GalcolorError(f"{path}: its galaxy-colour stage is damaged ({str(err).splitlines()[0]})") from None
    if galaxy_colour is not None:
        galaxy_colour.to(map_location)
    saturation = metadata.get(SATURATION_KEY, 1.0)
    if not isinstance(saturation, (int, float)) or not 0 <= saturation <= 1:
        raise GalcolorError(f"{path}: its default saturation must be a number from 0 to 1, not {saturation!r}")
    return LoadedModel(network, config, metadata, tensors.get(LUT_KEY), bins, Path(path), reference, Caution.from_tensors(tensors),
                       saturation=float(saturation), error_head=error_head, galaxy_colour=galaxy_colour,
                       survey_saturation=_survey_saturation(path, metadata, config))


def _survey_saturation(path: Path, metadata: dict[str, Any], config: ModelConfig) -> tuple[float, ...] | None:
    stored = metadata.get(SURVEY_SATURATION_KEY)
    if stored is None:
        return None
    if not isinstance(stored, dict) or sorted(stored) != sorted(config.surveys) or \
            not all(isinstance(v, (int, float)) and 0 <= v <= MAX_SATURATION for v in stored.values()):
        raise GalcolorError(f"{path}: its survey saturation must give each of its surveys ({', '.join(config.surveys)}) "
                            f"a number from 0 to {MAX_SATURATION:g}, not {stored!r}")
    return tuple(float(stored[name]) for name in config.surveys)


def stored_config(path: Path) -> ModelConfig:
    """A checkpoint's model config, read from its header alone (no weights): e.g. the surveys it knows."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
        return from_dict(ModelConfig, {"input_lightness": "raw", **json.loads(header["model_config"])})
    except (OSError, SafetensorError, KeyError, json.JSONDecodeError, TypeError, GalcolorError) as err:
        raise GalcolorError(f"{path}: not a readable galcolor checkpoint ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None


def save_tensors_with_json(path: Path, tensors: dict[str, torch.Tensor], payload: dict[str, Any]) -> None:
    """Training state: tensors in safetensors, the rest (epoch, RNG seeds, ...) as JSON metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write_bytes(Path(path), save(tensors, metadata={"format": FORMAT, "json": json.dumps(payload)}))


def load_tensors_with_json(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, header = _read(path)
    return tensors, json.loads(header.get("json", "{}"))
