"""Colour style presets: how cautious and how strong the colour is, shared by the CLI and the web app."""

from __future__ import annotations

from typing import Protocol, TypeVar

from ..errors import GalcolorError

# The best saturation on SDSS galaxies whose true colour was halved, as grey's error on DECaLS and
# GAMA suggests those surveys render it (scripts/style_tradeoff.py, model card).
MUTED_SATURATION = 0.5
MAX_SATURATION = 10.0  # beyond this every colour is pushed to the edge of the sRGB gamut, and float error grows
# (caution strength, saturation); None: the model's own default saturation, chosen on data.
STYLES = {"auto": (1.0, None), "sdss": (0.0, 1.0), "muted": (1.0, MUTED_SATURATION)}


class Stylable(Protocol):
    """What a style needs of a model (models.checkpoint.LoadedModel is one); named by shape so that
    colour maths does not import the networks."""

    def with_style(self, caution_strength: float | None = None, saturation: float | None = None) -> "Stylable": ...


ModelT = TypeVar("ModelT", bound=Stylable)


def styled(model: ModelT, style: str = "auto", caution: float | None = None, saturation: float | None = None) -> ModelT:
    """The model with a style preset, then an explicit caution strength or saturation over it."""
    if style not in STYLES:
        raise GalcolorError(f"unknown colour style {style!r}: choose one of {', '.join(STYLES)}")
    preset_caution, preset_saturation = STYLES[style]
    return model.with_style(preset_caution if caution is None else caution, preset_saturation if saturation is None else saturation)
