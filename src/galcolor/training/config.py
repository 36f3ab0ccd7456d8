"""The training config, frozen and validated; every run folder stores it in config.json."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import GalcolorError


FREEZE_CHOICES = ("none", "encoder", "network")


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
    contrast_weight: float = 0.0
    """Weight of a regress head's layout loss (losses.contrast_loss: the colour's deviation from the
    galaxy's mean and its local contrast, against the truth's) beside the colour loss; 0 trains without it."""
    contrast_rebalance_mix: float = 0.5
    """λ of that loss's rebalancing by the size of the true deviation: 0 weights by the inverse share, 1 not at all."""
    rebalance_mix: float = 0.5
    """λ of the class rebalancing of a 'classify' head: 0 weights by the inverse prior, 1 not at all."""
    val_fraction: float = 0.15
    seed: int = 0
    condition_on_survey: bool = False
    """Condition the network on each image's survey (its folder, or survey_names): it learns each
    survey's colour style, and a recogniser that picks the survey when a user gives none."""
    survey_loss_weight: float = 0.1
    """Weight of the survey recogniser's cross-entropy beside the colour loss."""
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
    survey_names: tuple[str, ...] | None = None
    """The survey each data folder holds, one name per folder (default: each folder's own name);
    folders may share a name (sdss-gz2 and sdss-more are both SDSS). Validation reports every
    metric per survey, and a survey-conditioned model learns one style per name."""
    galaxy_colour_noise: float = 6.0
    """A galaxy-colour-conditioned network is told each training image's true mean (a*, b*) plus
    Gaussian noise whose sigma (ab units, per image) is drawn uniformly up to this: in use it is told
    an estimate (the stage's error on held-out SDSS is about 5 ab), so it must learn how far to trust it."""
    galaxy_colour_dropout: float = 0.2
    """Share of training images whose colour it is not told ('unknown'): where the stage is not
    trusted (a survey whose colour it estimates worse than the network) the network still colours."""
    untold_surveys: tuple[str, ...] = ()
    """Surveys whose images a galaxy-colour-conditioned network is never told a colour in training: those
    whose colour the stage does not set (it is not trusted there), which in use are always 'unknown'."""
    freeze: str = "none"
    """With init_from, what keeps the initial weights and batch-norm statistics: 'encoder' (the encoder and
    survey recogniser: a caution, recogniser or stage fitted on them still holds) or 'network' (all but
    the galaxy-colour FiLM: a network told no colour is then the initial one exactly); 'none' trains all."""
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
        if not 0.0 <= self.rebalance_mix <= 1.0 or not 0.0 <= self.contrast_rebalance_mix <= 1.0:
            raise GalcolorError("rebalance_mix and contrast_rebalance_mix must lie between 0 and 1")
        if self.contrast_weight < 0.0:
            raise GalcolorError("contrast_weight must not be negative")
        if self.augment not in ("instrument", "none"):
            raise GalcolorError(f"unknown augmentation {self.augment!r}: choose instrument or none")
        if self.ab_loss not in ("l1", "de00"):
            raise GalcolorError(f"unknown ab loss {self.ab_loss!r}: choose l1 or de00")
        if self.survey_loss_weight < 0.0:
            raise GalcolorError("survey_loss_weight must not be negative")
        if self.galaxy_colour_noise < 0.0 or not 0.0 <= self.galaxy_colour_dropout <= 1.0:
            raise GalcolorError("galaxy_colour_noise must not be negative and galaxy_colour_dropout must lie between 0 and 1")
        if self.freeze not in FREEZE_CHOICES:
            raise GalcolorError(f"unknown freeze {self.freeze!r}: choose {', '.join(FREEZE_CHOICES)}")
        if self.freeze != "none" and not self.init_from:
            raise GalcolorError(f"freeze {self.freeze} keeps the weights of init_from: give a checkpoint to start from")
        if self.sky_weight < 0.0:
            raise GalcolorError("sky_weight must not be negative")
