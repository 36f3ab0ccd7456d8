"""The model config, frozen and validated; every checkpoint stores it as JSON, so `load_model` needs no flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import GalcolorError

# What `galcolor train` builds unless told otherwise: chroma at half the side trained 3.9x faster on
# a 2-core CPU at the same validation de00_fg on SDSS (docs/model-history.md). ModelConfig's own default stays 1:
# it is how a checkpoint or run folder from before working scales existed is read.
TRAIN_WORKING_SCALE = 2


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
    working_scale: int = 1
    """U-Net: 1, 2 or 4. Above 1 the U-Net predicts ab at 1/working_scale of the side (chroma is
    smooth) and a small full-resolution net refines it along the full L's edges; inputs are then
    padded to a multiple of 2**depth * working_scale."""
    surveys: tuple[str, ...] = ()
    """U-Net: names of the surveys it is conditioned on (a learned embedding each, FiLM on every
    decoder level, and a recogniser that guesses the survey when none is given); () for none."""
    global_pathway: bool = False
    """U-Net: the image-averaged bottleneck features, through a small MLP, condition the decoder
    too (a whole-galaxy view)."""
    global_pooling: str = "mean"
    """How the global pathway and the survey recogniser pool the bottleneck over the image: 'mean'
    (every position alike; checkpoints from before this option) or 'flux' (weighted by the
    luminance Y that the input L stands for, so a frame of mostly sky and a crop of mostly galaxy
    give the same whole-galaxy view: training sees crops, users colour whole frames)."""
    galaxy_colour_conditioned: bool = False
    """U-Net: the decoder is also told the galaxy's flux-weighted mean (a*, b*) (FiLM): in training the
    truth, noisy and sometimes withheld; in use the galaxy-colour stage's estimate or the user's hint,
    'unknown' where neither is trusted."""

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
        if isinstance(self.surveys, (list, str)):  # a JSON list, or one name
            object.__setattr__(self, "surveys", (self.surveys,) if isinstance(self.surveys, str) else tuple(self.surveys))
        if self.global_pooling not in ("mean", "flux"):
            raise GalcolorError(f"unknown global pooling {self.global_pooling!r}: choose mean or flux")
        if self.working_scale not in (1, 2, 4):
            raise GalcolorError(f"working scale {self.working_scale!r}: choose 1, 2 or 4")
        if not isinstance(self.surveys, tuple) or not all(isinstance(name, str) and name.strip() for name in self.surveys) or len(set(self.surveys)) != len(self.surveys):
            raise GalcolorError(f"surveys {self.surveys!r}: give distinct, non-empty names")
        if self.arch == "seed" and (self.working_scale != 1 or self.surveys or self.global_pathway or self.galaxy_colour_conditioned):
            raise GalcolorError("the seed network has no working scale, survey or galaxy-colour conditioning or global pathway: use arch unet")

    @property
    def out_channels(self) -> int:
        return self.num_bins if self.head == "classify" else 2

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this; inference pads to it."""
        return 4 if self.arch == "seed" else 2**self.depth * self.working_scale

    @property
    def network_label(self) -> str:
        """The network in a few words, e.g. 'unet w16 d4 scale 2 surveys sdss+decals global'."""
        if self.arch != "unet":
            return self.arch
        extras = (f" surveys {'+'.join(self.surveys)}" if self.surveys else "") + (" global" if self.global_pathway else "") \
            + (" galaxy-colour" if self.galaxy_colour_conditioned else "")
        return f"unet w{self.base_width} d{self.depth} scale {self.working_scale}{extras}"


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a config, ignoring keys a newer version may have added."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    # JSON has no tuples: a tuple-typed field comes back as a list.
    return cls(**{k: tuple(v) if isinstance(v, list) and _tuple_typed(fields[k].type) else v
                  for k, v in values.items() if k in fields})


def _tuple_typed(annotation: Any) -> bool:
    """Whether a field's annotation (a string under postponed evaluation) is a tuple, or a tuple or None."""
    if annotation is tuple:
        return True
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return any(part.strip().startswith(("tuple[", "Tuple[", "typing.Tuple[")) for part in text.split("|"))


