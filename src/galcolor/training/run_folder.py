"""A run folder's files: config, log, and the optimizer state that makes --resume exact."""

from __future__ import annotations

import csv
import io as _stringio
import json
import math
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import GalcolorError
from ..io.atomic import atomic_write_text
from ..models.config import ModelConfig, from_dict
from .config import TrainConfig


def _lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _optimizer_to_tensors(optimizer: torch.optim.Optimizer, prefix: str = "optim") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors = {
        f"{prefix}.{index}.{key}": value
        for index, slots in state["state"].items()
        for key, value in slots.items()
        if isinstance(value, torch.Tensor)
    }
    return tensors, {"param_groups": state["param_groups"]}


def _optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], payload: dict, prefix: str = "optim") -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
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


def _stored_configs(run: Run, requested: TrainConfig | None, folders: list[Path], log: Callable[[str], None]) -> tuple[ModelConfig, TrainConfig]:
    if not run.state.exists():
        # A run stopped inside its first epoch has config.json but nothing to resume from.
        hint = "; no epoch finished yet: delete the folder to start over" if run.config.exists() else ""
        raise GalcolorError(f"{run.dir}: nothing to resume (no last.state.safetensors){hint}")
    if not run.config.exists():
        raise GalcolorError(f"{run.dir}: config.json is missing, so the run cannot be rebuilt for --resume")
    stored = json.loads(run.config.read_text())
    trained_on = stored.get("data_dir", [])
    trained_on = [trained_on] if isinstance(trained_on, str) else trained_on
    given = [str(folder.resolve()) for folder in folders]
    if trained_on and given != trained_on:  # the split, look-up table and lightness reference all come from the data
        raise GalcolorError(f"{run.dir}: was trained on {', '.join(trained_on)}; --resume continues on the same data, "
                            f"not {', '.join(map(str, folders))}")
    train_config = from_dict(TrainConfig, stored["train"])
    if requested and requested.epochs != train_config.epochs:
        log(f"note: resuming with the run's own settings ({train_config.epochs} epochs), not --epochs {requested.epochs}")
    return from_dict(ModelConfig, stored["model"]), train_config
