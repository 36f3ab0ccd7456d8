"""The training loop: AdamW with warm-up + cosine, bf16 autocast where it pays, per-epoch
validation, safetensors checkpoints written atomically, and exact resume."""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..color.lab import normalise_ab, normalise_lightness, rgb_to_lab
from ..color.quantize import AbBins, classification_loss, count_bins
from ..errors import GalcolorError
from ..evaluation.metrics import SIGNAL_L
from ..io.atomic import atomic_write_text
from ..models import build_model, count_parameters
from ..models.checkpoint import LoadedModel, load_checkpoint, load_tensors_with_json, save_checkpoint, save_tensors_with_json
from ..models.config import ModelConfig, to_dict
from ..models.device import autocast, bf16_autocast_pays
from ..models.discriminator import PatchDiscriminator
from ..version import __version__
from . import distributed
from .colour_teacher import teacher_colours, told_colours
from .best_checkpoint import SELECTION_METRIC, BestCheckpoint, choose_temperature, fit_best_recogniser
from .config import TrainConfig
from .data import epoch_order, lightness_lut, load_folders, training_batches
from .inputs import NetworkInputs
from .losses import regression_loss
from .run_folder import Run, _lr_factor, _optimizer_from_tensors, _optimizer_to_tensors, _stored_configs, _write_log
from .sharding import check_shareable, rank_share
from .split import GalaxySet, survey_ids
from .validation import survey_key, validate


@dataclass
class TrainResult:
    run_dir: Path
    best_path: Path
    last_path: Path
    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, Any]]


def train(
    data_dir: Path | Sequence[Path],
    run_dir: Path,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    *,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train a colourizer on the colour images in data_dir; checkpoints and logs go to run_dir.

    In a process started by torchrun this joins the process group and trains with
    DistributedDataParallel (see docs/distributed.md); every rank returns the same result."""
    run = Run(run_dir)
    if not distributed.is_main():  # under torchrun, rank 0 speaks for the run
        progress, log = False, _silent
    if run.dir.exists() and not run.dir.is_dir():
        raise GalcolorError(f"{run.dir}: is a file, not a run folder")
    folders = [Path(d) for d in data_dir] if isinstance(data_dir, (list, tuple)) else [Path(data_dir)]
    if resume:
        model_config, train_config = _stored_configs(run, train_config, folders, log)
    elif run.holds_a_run():
        raise GalcolorError(f"{run.dir}: already holds a training run; pass --resume to continue it or choose another --out")
    model_config = model_config or ModelConfig()
    train_config = train_config or TrainConfig()
    if train_config.crop % model_config.size_multiple:
        raise GalcolorError(f"--crop {train_config.crop} must be a multiple of {model_config.size_multiple} for this network "
                            f"(2**depth x working scale)")
    if model_config.head == "classify" and (train_config.ab_loss != "l1" or train_config.contrast_weight):
        raise GalcolorError("--ab-loss and --contrast-weight are for a regress head; a classify head learns from its bins' cross-entropy")
    threads_before = torch.get_num_threads()
    if train_config.num_threads:
        torch.set_num_threads(train_config.num_threads)
    try:
        with distributed.session(device) as this_ranks_device:
            # On resume the saved state holds the weights: the --init-from file may have moved since.
            trainer = Trainer(folders, run, model_config, train_config, this_ranks_device, progress, log, initialise=not resume)
            if resume:
                trainer.restore()  # on every rank: each steps its own copy of the optimizer
            else:
                distributed.barrier()  # every rank has found the folder free before rank 0 fills it
                distributed.run_on_main(trainer.write_config)
            return trainer.fit()
    finally:
        torch.set_num_threads(threads_before)


def _silent(text: str) -> None:
    pass


class Trainer:
    """One run: data in memory, the network, its optimizer and schedule, and the run folder."""

    def __init__(self, data_dirs: list[Path], run: Run, model_config: ModelConfig, config: TrainConfig,
                 device: torch.device, progress: bool, log: Callable[[str], None], initialise: bool = True) -> None:
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        self.data_dirs, self.run, self.config, self.device, self.progress, self.log = data_dirs, run, config, device, progress, log
        weights = list(config.folder_weights) if config.folder_weights else None
        surveys = list(config.survey_names) if config.survey_names else None
        self.train_set = load_folders(data_dirs, "train", config.val_fraction, config.max_images, progress, weights, surveys)
        self.val_set = load_folders(data_dirs, "val", config.val_fraction, config.max_images, progress, weights, surveys)
        for line in self.train_set.skipped + self.val_set.skipped:
            log(f"skipped {line}")
        self.lut_ab = lightness_lut(self.train_set, rgb_to_lab)
        self.inputs = NetworkInputs(self.train_set, model_config.input_lightness == "canonical", config.augment == "instrument")
        self.lightness_reference = self.inputs.lightness_reference
        self.bins = None
        if model_config.head == "classify":
            self.bins = training_bins(self.train_set)
            model_config = dataclasses.replace(model_config, num_bins=self.bins.size)
            self.class_weights = self.bins.rebalance_weights(config.rebalance_mix).to(device)
        if config.condition_on_survey and not model_config.surveys:
            model_config = dataclasses.replace(model_config, surveys=tuple(self.train_set.survey_names()))
        self.survey_ids = survey_ids(self.train_set, model_config.surveys)
        self.model_config = model_config
        self.network = build_model(model_config).to(device).to(memory_format=torch.channels_last)
        if config.init_from and initialise:
            copied = initialise_from(self.network, Path(config.init_from))
            log(f"initialised {copied} of {len(self.network.state_dict())} tensors from {config.init_from}")
        self.frozen = frozen_parts(self.network, config.freeze)
        self.true_colours = teacher_colours(self.train_set, config.untold_surveys) if model_config.galaxy_colour_conditioned else None
        self.optimizer = torch.optim.AdamW([p for p in self.network.parameters() if p.requires_grad], lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.steps_per_epoch = max(1, len(self.train_set) // config.batch_size)
        total_steps = self.steps_per_epoch * config.epochs
        warmup = min(200, max(1, total_steps // 20))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: _lr_factor(s, total_steps, warmup))
        self.start_epoch, self.history, self.best_epoch, self.best_metrics = 0, [], 0, {}
        self.discriminator = None
        if config.adversarial_weight > 0:
            self.discriminator = PatchDiscriminator().to(device).to(memory_format=torch.channels_last)
            self.d_optimizer = torch.optim.AdamW(self.discriminator.parameters(), lr=config.lr, betas=(0.5, 0.999))
        if distributed.active():
            check_shareable(config.batch_size, len(self.train_set), ", ".join(map(str, data_dirs)))
        # What training forwards through: the network, or under torchrun its DistributedDataParallel
        # wrapper. self.network stays the bare module: saved, validated and restored as in one process.
        self.training_network = distributed.data_parallel(self.network, device)

    def model(self) -> LoadedModel:
        return LoadedModel(self.network, self.model_config, lut_ab=self.lut_ab, bins=self.bins,
                           lightness_reference=self.lightness_reference)

    def write_config(self) -> None:
        self.run.dir.mkdir(parents=True, exist_ok=True)
        description = {
            "model": to_dict(self.model_config),
            "train": to_dict(self.config),
            "data_dir": [str(d.resolve()) for d in self.data_dirs],
            "train_images": len(self.train_set),
            "val_images": len(self.val_set),
            "parameters": count_parameters(self.network),
            "galcolor": __version__,
            "torch": torch.__version__,
            "device": str(self.device),
            "processes": distributed.world(),
            "bf16_autocast": bf16_autocast_pays(self.device),
            "python": platform.python_version(),
        }
        atomic_write_text(self.run.config, json.dumps(description, indent=2))

    def restore(self) -> None:
        for leftover in self.run.dir.glob(".tmp-*"):  # half-written files of a killed run
            leftover.unlink(missing_ok=True)
        tensors, payload = load_tensors_with_json(self.run.state)
        self.network.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        _optimizer_from_tensors(self.optimizer, tensors, payload["optimizer"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("disc.")})
            _optimizer_from_tensors(self.d_optimizer, tensors, payload["d_optimizer"], prefix="doptim")
        self.scheduler.load_state_dict(payload["scheduler"])
        self.start_epoch, self.history = payload["epoch"], payload["history"]
        self.best_epoch, self.best_metrics = payload["best_epoch"], payload["best_metrics"]
        self.log(f"resuming {self.run.dir} after epoch {self.start_epoch}")

    def loss(self, batch: torch.Tensor, indices: list[int], generator: torch.Generator) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None]:
        """(B, 3, crop, crop) uint8 sRGB crops of the images `indices` -> the generator's loss of one
        batch, and, when training adversarially, (normalised L, true ab, predicted ab) for the
        discriminator's step. `generator` draws the augmentation."""
        seen, lab = self.inputs(rgb_to_lab(batch.to(self.device, non_blocking=True).float() / 255.0), indices, generator)
        lightness = lab[:, :1]
        x = normalise_lightness(seen).contiguous(memory_format=torch.channels_last)
        surveys = None if self.survey_ids is None else self.survey_ids[indices].to(self.device)  # (B,)
        told = {}
        if self.true_colours is not None:
            colours, signal = (part[indices] for part in self.true_colours)
            told["galaxy_colour"] = told_colours(colours, signal, self.config.galaxy_colour_noise, self.config.galaxy_colour_dropout,
                                                 generator).to(self.device)
        with autocast(self.device):
            if surveys is None:
                output = self.training_network(x, **told)
            else:
                one_hot = F.one_hot(surveys, len(self.model_config.surveys)).float()
                output, survey_logits = self.training_network(x, survey=one_hot, with_survey_logits=True, **told)
        if self.bins is None:
            loss = regression_loss(output, lab, self.config.ab_loss, self.config.sky_weight, self.config.contrast_weight,
                                   self.config.contrast_rebalance_mix)
        else:
            targets = self.bins.soft_encode(lab[:, 1:])
            sky = torch.where(lightness[:, 0] > SIGNAL_L, 1.0, self.config.sky_weight)
            loss = classification_loss(output, targets, self.class_weights, pixel_weights=sky)
        if surveys is not None and not self.frozen:
            loss = loss + self.config.survey_loss_weight * F.cross_entropy(survey_logits.float(), surveys)
        if self.discriminator is None:
            return loss, None
        predicted_ab = normalise_ab(self.model().decode(output))  # differentiable for both heads
        with autocast(self.device):
            verdict = self.discriminator(x, predicted_ab)
        fooled = F.binary_cross_entropy_with_logits(verdict.float(), torch.ones_like(verdict, dtype=torch.float32))
        return loss + self.config.adversarial_weight * fooled, (x, normalise_ab(lab[:, 1:]), predicted_ab.detach())

    def discriminator_step(self, x: torch.Tensor, true_ab: torch.Tensor, predicted_ab: torch.Tensor) -> None:
        with autocast(self.device):
            real, fake = self.discriminator(x, true_ab), self.discriminator(x, predicted_ab)
        loss = F.binary_cross_entropy_with_logits(real.float(), torch.ones_like(real, dtype=torch.float32)) + \
            F.binary_cross_entropy_with_logits(fake.float(), torch.zeros_like(fake, dtype=torch.float32))
        self.d_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(self.discriminator)  # not DDP-wrapped: loss() also runs it for the generator
        self.d_optimizer.step()

    def run_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over the training split; returns (mean loss, images per second)."""
        self.network.train()
        for module in self.frozen:  # batch norm's running statistics are the encoder's too
            module.eval()
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        if distributed.active():
            batches, generator = self.rank_batches(generator)
        else:
            batches = training_batches(self.train_set, self.config.batch_size, self.config.crop, self.config.crop_jitter, generator)
        bar = tqdm(batches, total=self.steps_per_epoch, desc=f"epoch {epoch}/{self.config.epochs}", unit="batch",
                   disable=not self.progress, leave=False)
        began, losses = time.perf_counter(), []
        for indices, batch in bar:
            loss, for_discriminator = self.loss(batch, indices, generator)
            # Checked over all ranks, so that every rank stops at the same step instead of waiting
            # in the next gradient all-reduce for one that stopped.
            checked = distributed.mean_over_ranks(loss.detach())
            if not torch.isfinite(checked):
                kept = (f"the last good checkpoint is kept in {self.run.last}" if self.run.last.exists()
                        else f"no epoch finished, so no checkpoint was written; delete {self.run.dir} to start over")
                raise GalcolorError(f"training stopped: the loss became {checked.item()} in epoch {epoch}; {kept} (a lower --lr may help)")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            if for_discriminator is not None:
                self.discriminator_step(*for_discriminator)
            losses.append(loss.detach())
            bar.set_postfix(loss=f"{loss.item():.4f}")
        seconds = time.perf_counter() - began
        return float(distributed.mean_over_ranks(torch.stack(losses).mean())), self.steps_per_epoch * self.config.batch_size / seconds

    def rank_batches(self, generator: torch.Generator):
        """This rank's batches of the epoch that `generator` shuffles (indices into the whole
        training split, as in one process), and the generator of this rank's own augmentation."""
        order = epoch_order(self.train_set, generator)
        mine = rank_share(order, self.config.batch_size, distributed.rank(), distributed.world())
        # A stream of draws shared by all ranks would give the images at the same place in every
        # rank's batch the same rotation, crop and imitated instrument.
        seeds = torch.randint(0, 2**62, (distributed.world(),), generator=generator).tolist()
        own = torch.Generator().manual_seed(seeds[distributed.rank()])
        share = dataclasses.replace(self.train_set, images=[self.train_set.images[i] for i in mine],
                                    labels=[self.train_set.labels[i] for i in mine],
                                    relatives=[self.train_set.relatives[i] for i in mine], sampling_weights=None)
        batches = training_batches(share, len(mine) // self.steps_per_epoch, self.config.crop, self.config.crop_jitter, own)
        return (([mine[i] for i in indices], batch) for indices, batch in batches), own

    def save(self, epoch: int, metrics: dict[str, float]) -> None:
        """best (by validation de00_fg), last, and the state that --resume needs, each atomically."""
        meta = {"epoch": epoch, "val_metrics": metrics, "train_config": to_dict(self.config), "data_dir": [str(d) for d in self.data_dirs]}
        if not self.best_metrics or metrics[SELECTION_METRIC] < self.best_metrics[SELECTION_METRIC]:
            self.best_epoch, self.best_metrics = epoch, metrics
            save_checkpoint(self.run.best, self.network, self.model_config, meta, self.lut_ab, self.bins, self.lightness_reference)
        save_checkpoint(self.run.last, self.network, self.model_config, meta, self.lut_ab, self.bins, self.lightness_reference)
        optimizer_tensors, optimizer_payload = _optimizer_to_tensors(self.optimizer)
        tensors = {**{f"model.{k}": v for k, v in self.network.state_dict().items()}, **optimizer_tensors}
        payload = {"epoch": epoch, "optimizer": optimizer_payload, "scheduler": self.scheduler.state_dict(), "history": self.history,
                   "best_epoch": self.best_epoch, "best_metrics": self.best_metrics}
        if self.discriminator is not None:
            d_tensors, payload["d_optimizer"] = _optimizer_to_tensors(self.d_optimizer, prefix="doptim")
            tensors.update({f"disc.{k}": v for k, v in self.discriminator.state_dict().items()}, **d_tensors)
        save_tensors_with_json(self.run.state, tensors, payload)
        _write_log(self.run.log, self.history)

    def fit(self) -> TrainResult:
        tensorboard = _open_tensorboard(self.run.dir) if distributed.is_main() else None
        try:
            for epoch in range(self.start_epoch + 1, self.config.epochs + 1):
                train_loss, images_per_s = self.run_epoch(epoch)
                # Rank 0 alone validates and writes the run folder; the others wait for its
                # bookkeeping, so every rank goes on with (and returns) the same history.
                self.history, self.best_epoch, self.best_metrics = distributed.run_on_main(
                    self.finish_epoch, epoch, train_loss, images_per_s, tensorboard)
        finally:
            if tensorboard:
                tensorboard.close()
        if self.bins is not None and self.best_metrics:
            self.best_metrics = distributed.run_on_main(choose_temperature, self.best_run(), self.val_set, self.best_metrics, self.log)
        if self.model_config.surveys and self.best_metrics and not self.frozen:  # a frozen recogniser is the initial one
            self.best_metrics = distributed.run_on_main(fit_best_recogniser, self.best_run(), self.train_set, self.val_set, self.best_metrics, self.log)
        return TrainResult(self.run.dir, self.run.best, self.run.last, self.best_epoch, self.best_metrics, self.history)

    def best_run(self) -> BestCheckpoint:
        return BestCheckpoint(self.run.best, self.device, self.config.batch_size, self.config.sky_weight)

    def finish_epoch(self, epoch: int, train_loss: float, images_per_s: float, tensorboard) -> tuple[list[dict[str, Any]], int, dict[str, float]]:
        """Validate, log and save a finished epoch; returns (history, best epoch, best metrics)."""
        metrics = validate(self.model(), self.val_set, self.config.batch_size, self.config.sky_weight)
        row = {"epoch": epoch, "train_loss": train_loss, "lr": self.scheduler.get_last_lr()[0], "images_per_s": images_per_s,
               **{k: metrics[k] for k in LOGGED_METRICS},
               **{k: v for k, v in metrics.items() if k.rpartition("/")[2] in LOGGED_METRICS and "/" in k}}
        self.history.append(row)
        if tensorboard:
            for key, value in row.items():
                tensorboard.add_scalar(key, value, epoch)
        self.save(epoch, metrics)
        self.log(
            f"epoch {epoch:3d}  loss {train_loss:.4f}  val de00_fg {metrics['de00_fg']:.2f}  ab_fg {metrics['ab_fg']:.2f}  "
            f"colour_r {metrics['colour_r']:.3f}  dcf {metrics['dcf']:.2f}  {images_per_s:.0f} img/s"
            + "".join(f"\n    {survey}: de00_fg {metrics[survey_key(survey, 'de00_fg')]:.2f}  colour_r {metrics[survey_key(survey, 'colour_r')]:.3f}"
                      for survey in self.val_set.survey_names() if survey_key(survey, "de00_fg") in metrics)
        )
        return self.history, self.best_epoch, self.best_metrics


LOGGED_METRICS = ("val_loss", "psnr", "de00_fg", "ab_fg", "auc_fg", "dcf", "colour_r", "class_auc", "truth_class_auc")


def initialise_from(network: torch.nn.Module, path: Path) -> int:
    """Copy every tensor of a checkpoint whose name and shape fit (e.g. all but a new head)."""
    source = load_checkpoint(path).network.state_dict()
    target = network.state_dict()
    fitting = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    if len(fitting) < len(target) / 2:  # a stray bias of equal shape is no basis for fine-tuning
        raise GalcolorError(f"{path}: only {len(fitting)} of {len(target)} tensors fit this architecture; is it the same model?")
    network.load_state_dict(fitting, strict=False)
    return len(fitting)


def frozen_parts(network: torch.nn.Module, freeze: str) -> list[torch.nn.Module]:
    """Freeze a U-Net's encoder and survey recogniser ('encoder') or all but its galaxy-colour FiLM
    ('network'), weights and batch-norm statistics; returns the modules to keep in eval mode while the
    rest trains (none for 'none')."""
    if freeze == "none":
        return []
    if not hasattr(network, "downs"):
        raise GalcolorError(f"--freeze {freeze} needs a U-Net (the seed network has no separate encoder)")
    if freeze == "network":
        if not getattr(network, "colour_conditioned", False):
            raise GalcolorError("--freeze network leaves only the galaxy-colour FiLM to train: add --condition-on-galaxy-colour")
        modules = [module for name, module in network.named_children() if name != "galaxy_colour_film"]
    else:
        modules = [network.stem, network.downs]
        conditioning = getattr(network, "conditioning", None)
        if conditioning is not None and hasattr(conditioning, "recogniser"):
            modules.append(conditioning.recogniser)
    for module in modules:
        module.requires_grad_(False)
    return modules


def training_bins(dataset: GalaxySet) -> AbBins:
    """The ab bins that the galaxies of the training split (signal pixels, L > 15) actually use,
    with their empirical prior. Sky noise would add dozens of bins no galaxy needs; sky pixels
    are still trained on, encoded onto the nearest kept bins."""
    counts = None
    for image in dataset.images:
        lab = rgb_to_lab(image[None].float() / 255.0)[0].flatten(1).T  # (H*W, 3)
        image_counts = count_bins(lab[lab[:, 0] > SIGNAL_L, 1:])
        counts = image_counts if counts is None else counts + image_counts
    if int(counts.sum()) == 0:  # no galaxy light anywhere: use every pixel rather than no bins
        counts = sum(count_bins(rgb_to_lab(image[None].float() / 255.0)[0, 1:].flatten(1).T) for image in dataset.images)
    return AbBins.from_counts(counts)


def _open_tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # TensorBoard is optional
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
