"""The training loop: AdamW with warm-up + cosine, bf16 autocast where it pays, safetensors
checkpoints written atomically, per-epoch validation metrics, and exact resume."""

from __future__ import annotations

import csv
import io as _stringio
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from . import __version__
from .checkpoint import LoadedModel, load_tensors_with_json, save_checkpoint, save_tensors_with_json
from .color import lab_array_to_rgb8, normalise_ab, normalise_lightness, rgb_to_lab
from .config import ModelConfig, TrainConfig, from_dict, to_dict
from .data import GalaxySet, lightness_lut, load_split, training_batches
from .device import autocast, bf16_autocast_pays, resolve_device
from .errors import GalcolorError
from .infer import colorize_tensor
from .io import atomic_write_text
from .metrics import SIGNAL_L, MetricAccumulator
from .models import build_model, count_parameters

SELECTION_METRIC = "de00_fg"  # `best` is the epoch with the lowest validation CIEDE2000 on galaxy pixels


@dataclass
class TrainResult:
    run_dir: Path
    best_path: Path
    last_path: Path
    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, Any]]


def weighted_ab_loss(pred: torch.Tensor, target: torch.Tensor, lightness: torch.Tensor, sky_weight: float) -> torch.Tensor:
    """L1 between normalised ab maps, sky pixels down-weighted so the galaxy drives learning."""
    weights = torch.where(lightness > SIGNAL_L, 1.0, sky_weight)  # (B, 1, H, W)
    return (weights * (pred - target).abs()).sum() / (weights.sum() * pred.shape[1])


def _lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors = {
        f"optim.{index}.{key}": value
        for index, slots in state["state"].items()
        for key, value in slots.items()
        if isinstance(value, torch.Tensor)
    }
    return tensors, {"param_groups": state["param_groups"]}


def _optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], payload: dict) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    groups = payload["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


class Run:
    """The files of one run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        self.config = self.dir / "config.json"
        self.best = self.dir / "best.safetensors"
        self.last = self.dir / "last.safetensors"
        self.state = self.dir / "last.state.safetensors"
        self.log = self.dir / "log.csv"

    def holds_a_run(self) -> bool:
        return self.config.exists() or self.last.exists()


def _write_log(path: Path, history: list[dict[str, Any]]) -> None:
    if not history:
        return
    columns = list(dict.fromkeys(k for row in history for k in row))
    buffer = _stringio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


def validate(model: LoadedModel, dataset: GalaxySet, batch_size: int, sky_weight: float) -> dict[str, float]:
    """Metrics of design.md over a split, each image coloured whole at its own size."""
    accumulator = MetricAccumulator()
    losses = []
    model.network.eval()
    by_size: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(dataset.images):
        by_size.setdefault(tuple(image.shape), []).append(index)
    for indices in by_size.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            rgb8 = torch.stack([dataset.images[i] for i in chunk])
            pred_lab, true_lab = colorize_tensor(model, rgb8.float() / 255.0)
            losses.append(
                weighted_ab_loss(normalise_ab(pred_lab[:, 1:]), normalise_ab(true_lab[:, 1:]), true_lab[:, :1], sky_weight).item()
            )
            for j, i in enumerate(chunk):
                pred = pred_lab[j].permute(1, 2, 0).cpu().numpy()
                true = true_lab[j].permute(1, 2, 0).cpu().numpy()
                truth_rgb8 = dataset.images[i].permute(1, 2, 0).numpy()
                accumulator.add(true, pred, truth_rgb8, lab_array_to_rgb8(pred), dataset.labels[i])
    summary = accumulator.summary()
    summary["val_loss"] = float(np.mean(losses))
    return summary


def train(
    data_dir: Path,
    run_dir: Path,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    *,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    run = Run(run_dir)
    start_epoch, history, best_epoch, best_metrics = 0, [], 0, {}
    if resume:
        if not run.state.exists():
            raise GalcolorError(f"{run.dir}: nothing to resume (no last.state.safetensors)")
        stored = json.loads(run.config.read_text())
        model_config = from_dict(ModelConfig, stored["model"])
        requested_epochs = train_config.epochs if train_config else None
        train_config = from_dict(TrainConfig, stored["train"])
        if requested_epochs and requested_epochs != train_config.epochs:
            log(f"note: resuming with the run's own settings ({train_config.epochs} epochs), not --epochs {requested_epochs}")
    else:
        if run.holds_a_run():
            raise GalcolorError(f"{run.dir}: already holds a training run; pass --resume to continue it or choose another --out")
        model_config = model_config or ModelConfig()
        train_config = train_config or TrainConfig()

    torch_device = resolve_device(device)
    if train_config.num_threads:
        torch.set_num_threads(train_config.num_threads)
    torch.manual_seed(train_config.seed)
    np.random.seed(train_config.seed)

    train_set = load_split(data_dir, "train", train_config.val_fraction, train_config.max_images, progress)
    val_set = load_split(data_dir, "val", train_config.val_fraction, train_config.max_images, progress)
    for line in train_set.skipped + val_set.skipped:
        log(f"skipped {line}")
    lut_ab = lightness_lut(train_set, rgb_to_lab)

    network = build_model(model_config).to(torch_device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(network.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay)
    steps_per_epoch = max(1, len(train_set) // train_config.batch_size)
    total_steps = steps_per_epoch * train_config.epochs
    warmup = min(200, max(1, total_steps // 20))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, total_steps, warmup))

    if resume:
        tensors, payload = load_tensors_with_json(run.state)
        network.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        _optimizer_from_tensors(optimizer, tensors, payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        start_epoch, history = payload["epoch"], payload["history"]
        best_epoch, best_metrics = payload["best_epoch"], payload["best_metrics"]
        log(f"resuming {run.dir} after epoch {start_epoch}")
    else:
        run.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            run.config,
            json.dumps(
                {
                    "model": to_dict(model_config),
                    "train": to_dict(train_config),
                    "data_dir": str(Path(data_dir).resolve()),
                    "train_images": len(train_set),
                    "val_images": len(val_set),
                    "parameters": count_parameters(network),
                    "galcolor": __version__,
                    "torch": torch.__version__,
                    "device": str(torch_device),
                    "bf16_autocast": bf16_autocast_pays(torch_device),
                    "python": platform.python_version(),
                },
                indent=2,
            ),
        )

    tensorboard = _open_tensorboard(run.dir)
    loaded = LoadedModel(network, model_config, lut_ab=lut_ab)
    for epoch in range(start_epoch + 1, train_config.epochs + 1):
        network.train()
        generator = torch.Generator().manual_seed(train_config.seed * 100_003 + epoch)
        began, losses = time.perf_counter(), []
        batches = training_batches(train_set, train_config.batch_size, train_config.crop, train_config.crop_jitter, generator)
        bar = tqdm(batches, total=steps_per_epoch, desc=f"epoch {epoch}/{train_config.epochs}", unit="batch", disable=not progress, leave=False)
        for batch in bar:
            lab = rgb_to_lab(batch.to(torch_device, non_blocking=True).float() / 255.0)
            lightness = lab[:, :1]
            x = normalise_lightness(lightness).contiguous(memory_format=torch.channels_last)
            with autocast(torch_device):
                pred = network(x)
            loss = weighted_ab_loss(pred.float(), normalise_ab(lab[:, 1:]), lightness, train_config.sky_weight)
            if not torch.isfinite(loss):
                raise GalcolorError(
                    f"training stopped: the loss became {loss.item()} in epoch {epoch}; "
                    f"the last good checkpoint is kept in {run.last if run.last.exists() else run.dir}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.detach())
            bar.set_postfix(loss=f"{loss.item():.4f}")
        seconds = time.perf_counter() - began
        metrics = validate(loaded, val_set, train_config.batch_size, train_config.sky_weight)
        row = {
            "epoch": epoch,
            "train_loss": float(torch.stack(losses).mean()),
            "lr": scheduler.get_last_lr()[0],
            "images_per_s": steps_per_epoch * train_config.batch_size / seconds,
            **{k: metrics[k] for k in ("val_loss", "psnr", "de00_fg", "ab_fg", "auc_fg", "dcf", "colour_r", "class_auc", "truth_class_auc")},
        }
        history.append(row)
        if tensorboard:
            for key, value in row.items():
                tensorboard.add_scalar(key, value, epoch)
        checkpoint_meta = {"epoch": epoch, "val_metrics": metrics, "train_config": to_dict(train_config), "data_dir": str(data_dir)}
        if not best_metrics or metrics[SELECTION_METRIC] < best_metrics[SELECTION_METRIC]:
            best_epoch, best_metrics = epoch, metrics
            save_checkpoint(run.best, network, model_config, checkpoint_meta, lut_ab)
        save_checkpoint(run.last, network, model_config, checkpoint_meta, lut_ab)
        optimizer_tensors, optimizer_payload = _optimizer_to_tensors(optimizer)
        save_tensors_with_json(
            run.state,
            {**{f"model.{k}": v for k, v in network.state_dict().items()}, **optimizer_tensors},
            {
                "epoch": epoch,
                "optimizer": optimizer_payload,
                "scheduler": scheduler.state_dict(),
                "history": history,
                "best_epoch": best_epoch,
                "best_metrics": best_metrics,
            },
        )
        _write_log(run.log, history)
        log(
            f"epoch {epoch:3d}  loss {row['train_loss']:.4f}  val de00_fg {metrics['de00_fg']:.2f}  "
            f"ab_fg {metrics['ab_fg']:.2f}  colour_r {metrics['colour_r']:.3f}  dcf {metrics['dcf']:.2f}  "
            f"{row['images_per_s']:.0f} img/s"
        )
    if tensorboard:
        tensorboard.close()
    return TrainResult(run.dir, run.best, run.last, best_epoch, best_metrics, history)


def _open_tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # TensorBoard is optional
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
