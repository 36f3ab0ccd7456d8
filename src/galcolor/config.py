"""Frozen, validated configs. Every run folder and checkpoint stores them as JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import GalcolorError


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


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    """Passes over the training split."""
    batch_size: int = 16
    crop: int = 128
    """Side of the random square crops trained on (native pixel scale)."""
    crop_jitter: float = 0.25
    """How far (fraction of the free margin) a crop centre may wander from the image centre:
    survey cutouts put the galaxy in the middle, and a crop of pure sky teaches nothing."""
    lr: float = 2e-3
    weight_decay: float = 1e-4
    sky_weight: float = 0.25
    """Loss weight of sky pixels (true L <= 15) relative to signal pixels."""
    ab_loss: str = "l1"
    """Loss of a 'regress' head: 'l1' on ab, or 'de00', CIEDE2000 against the truth (the metric
    evaluate reports first)."""
    rebalance_mix: float = 0.5
    """λ of the class rebalancing of a 'classify' head: 0 weights by the inverse prior, 1 not at all."""
    val_fraction: float = 0.15
    seed: int = 0
    adversarial_weight: float = 0.0
    """Weight of a PatchGAN term (pix2pix) added to the loss; 0 trains without a discriminator.
    Usually with init_from: adversarial fine-tuning of a trained model."""
    init_from: str | None = None
    """A checkpoint whose weights (where names and shapes fit) start the network: fine-tuning,
    or a new head on a trained body."""
    max_images: int | None = None
    """Use only the first N images of the sorted listing (quick experiments and tests)."""
    num_threads: int | None = None
    folder_weights: tuple[float, ...] | None = None
    """With several data folders: each folder's share of a training epoch (default: equal shares)."""
    augment: str = "instrument"
    """'instrument': imitate other telescopes and renderings (stretch, gain and clipping, sky, noise,
    PSF, resolution, scale, JPEG; see augment.py); 'none': rotations, flips and crops only."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise GalcolorError("epochs and batch size must be at least 1")
        if self.crop < 16 or self.crop % 16:
            raise GalcolorError("crop must be a multiple of 16 and at least 16")
        if not 0.0 < self.val_fraction < 1.0:
            raise GalcolorError("val_fraction must lie strictly between 0 and 1")
        if not 0.0 <= self.crop_jitter <= 1.0:  # beyond 1 a crop start leaves the image
            raise GalcolorError("crop_jitter must lie between 0 and 1")
        if not self.lr > 0.0 or self.weight_decay < 0.0:
            raise GalcolorError("the learning rate must be positive and the weight decay not negative")
        if self.adversarial_weight < 0.0:
            raise GalcolorError("adversarial_weight must not be negative")
        if not 0.0 <= self.rebalance_mix <= 1.0:
            raise GalcolorError("rebalance_mix must lie between 0 and 1")
        if self.augment not in ("instrument", "none"):
            raise GalcolorError(f"unknown augmentation {self.augment!r}: choose instrument or none")
        if self.ab_loss not in ("l1", "de00"):
            raise GalcolorError(f"unknown ab loss {self.ab_loss!r}: choose l1 or de00")
        if self.sky_weight < 0.0:
            raise GalcolorError("sky_weight must not be negative")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a config, ignoring keys a newer version may have added."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in known})


__all__ = ["ModelConfig", "TrainConfig", "to_dict", "from_dict", "field"]
