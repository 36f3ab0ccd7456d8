"""The model config, frozen and validated; every checkpoint stores it as JSON, so `load_model` needs no flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import GalcolorError


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "unet"
    """'seed' (the originating study's encoder-decoder) or 'unet'."""
    base_width: int = 16
    """U-Net channels at full resolution; doubled at each level."""
    depth: int = 4
    """U-Net downsamplings; inputs are padded to a multiple of 2**depth."""
    head: str = "regress"
    """'regress': 2 tanh channels of ab (L1 loss); 'classify': logits over quantised ab bins
    (Zhang et al. 2016), decoded by the annealed mean."""
    num_bins: int = 0
    """Number of ab bins of a 'classify' head; set from the training data."""
    temperature: float = 0.38
    """Annealed-mean temperature of a 'classify' head (lower: more vivid, patchier)."""
    input_lightness: str = "canonical"
    """'canonical': each image's L is rank-matched to the training set's lightness distribution
    first, so how it was stretched does not matter (see lightness.py); 'raw': L as given
    (checkpoints from before this option)."""

    def __post_init__(self) -> None:
        if self.arch not in ("seed", "unet"):
            raise GalcolorError(f"unknown architecture {self.arch!r}: choose seed or unet")
        if self.input_lightness not in ("canonical", "raw"):
            raise GalcolorError(f"unknown input lightness {self.input_lightness!r}: choose canonical or raw")
        if self.head not in ("regress", "classify"):
            raise GalcolorError(f"unknown head {self.head!r}: choose regress or classify")
        if not 0.0 < self.temperature <= 1.0:
            raise GalcolorError("temperature must lie in (0, 1]")
        if self.base_width < 4 or not 1 <= self.depth <= 6:
            raise GalcolorError("U-Net needs base_width >= 4 and depth between 1 and 6")

    @property
    def out_channels(self) -> int:
        return self.num_bins if self.head == "classify" else 2

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this; inference pads to it."""
        return 4 if self.arch == "seed" else 2**self.depth


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a config, ignoring keys a newer version may have added."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in known})


