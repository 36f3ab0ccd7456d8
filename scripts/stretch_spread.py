"""How much a model's colour depends on how the image was stretched.

Each SDSS validation galaxy (every 5th, with at least 50 signal pixels) is shown to each model
under five renderings of its lightness; the figure is the mean, over signal pixels, of each
pixel's ab distance from its mean over the renderings. Caution is off, so the network alone is
measured.

    python scripts/stretch_spread.py ../shared/data/sdss-gz2 shipped=src/galcolor/weights/galcolor-unet.safetensors other=runs/x/best.safetensors
"""

import sys
from pathlib import Path

import numpy as np
import torch

from galcolor.app.api import load_model
from galcolor.color.lab import rgb_to_lab
from galcolor.training.data import load_split
from galcolor.inference.predict import predict_ab


def renderings(lightness: torch.Tensor) -> list[torch.Tensor]:
    unit = (lightness / 100).clamp(0, 1)
    return [lightness, unit**0.5 * 100, unit**2 * 100, torch.asinh(unit / 0.05) / np.arcsinh(1 / 0.05) * 100,
            (unit * 1.5).clamp(0, 1) * 100]


def main(data_dir: str, *named_models: str) -> None:
    torch.set_num_threads(1)
    models = {name: load_model(path).with_style(0.0, 1.0) for name, path in (item.split("=", 1) for item in named_models)}
    val = load_split(Path(data_dir), "val", progress=False)
    spreads: dict[str, list[float]] = {name: [] for name in models}
    for image in val.images[::5]:
        lightness = rgb_to_lab(image[None].float() / 255)[:, :1]
        signal = lightness[0, 0] > 15
        if signal.sum() < 50:
            continue
        for name, model in models.items():
            ab = torch.stack([predict_ab(model, version)[0] for version in renderings(lightness)])
            spread = (ab - ab.mean(0, keepdim=True)).norm(dim=1).mean(0)
            spreads[name].append(float(spread[signal].mean()))
    for name, values in spreads.items():
        print(f"{name}: mean ab spread over 5 renderings, signal pixels of {len(values)} galaxies: "
              f"{np.mean(values):.2f} (median {np.median(values):.2f})")


if __name__ == "__main__":
    main(*sys.argv[1:])
