"""Where a model's colour error on SDSS comes from: its prediction beside oracle repairs of it.

Each repair borrows one thing from the truth, so the drop in `de00_fg` says how much of the error
that thing explains:

* mean colour: the prediction shifted so that its mean ab over the galaxy (signal pixels) is the
  truth's; the structure inside the galaxy stays the model's.
* flat mean colour: the truth's mean ab painted flat over the galaxy; no structure at all.
* strength: the prediction times the one factor per image that fits the truth best (least squares).

And one repair that needs no truth: the mean over the 8 flips and quarter turns of the input
(test-time augmentation). Scored as `evaluate` scores (chroma fitted into sRGB, CIEDE2000 over
pixels with true L > 15, mean over images), at full saturation without caution (`--style sdss`).

    python scripts/error_budget.py ../shared/data/sdss-gz2 [model.safetensors]
"""

import sys
from pathlib import Path

import numpy as np
import torch
from skimage.color import deltaE_ciede2000

from galcolor.api import load_model
from galcolor.color import fit_chroma_to_gamut, rgb_to_lab
from galcolor.data import load_split
from galcolor.infer import predict_ab
from galcolor.metrics import SIGNAL_L
from galcolor.style import styled


def de00_fg(true_lab: torch.Tensor, ab: torch.Tensor, signal: np.ndarray) -> float:
    predicted = fit_chroma_to_gamut(torch.cat([true_lab[:, :1], ab], dim=1))[0].permute(1, 2, 0).numpy()
    truth = true_lab[0].permute(1, 2, 0).numpy()
    return float(deltaE_ciede2000(truth[signal], predicted[signal]).mean())


def over_flips_and_turns(model, lightness: torch.Tensor) -> torch.Tensor:
    predictions = []
    for turns in range(4):
        for flip in (False, True):
            seen = torch.rot90(lightness, turns, (2, 3))
            seen = seen.flip(3) if flip else seen
            ab = predict_ab(model, seen).float()
            ab = ab.flip(3) if flip else ab
            predictions.append(torch.rot90(ab, -turns, (2, 3)))
    return torch.stack(predictions).mean(dim=0)


def main(data_dir: str, model_path: str | None = None) -> None:
    torch.set_num_threads(1)
    model = styled(load_model(model_path), "sdss")
    val = load_split(Path(data_dir), "val", progress=False)
    rows = {name: [] for name in ("gray", "model", "mean colour", "flat mean colour", "strength", "8 flips and turns")}
    for image in val.images:
        with torch.inference_mode():
            true_lab = rgb_to_lab(image[None].float() / 255.0)
            ab = predict_ab(model, true_lab[:, :1]).float()
            averaged = over_flips_and_turns(model, true_lab[:, :1])
        signal_t = true_lab[0, 0] > SIGNAL_L
        signal = signal_t.numpy()
        if not signal.any():
            continue
        true_mean = true_lab[0, 1:][:, signal_t].mean(dim=1).view(1, 2, 1, 1)
        own_mean = ab[0][:, signal_t].mean(dim=1).view(1, 2, 1, 1)
        predicted_fg, true_fg = ab[0][:, signal_t], true_lab[0, 1:][:, signal_t]
        factor = float((predicted_fg * true_fg).sum() / (predicted_fg * predicted_fg).sum().clamp(min=1e-6))
        rows["gray"].append(de00_fg(true_lab, torch.zeros_like(ab), signal))
        rows["model"].append(de00_fg(true_lab, ab, signal))
        rows["mean colour"].append(de00_fg(true_lab, torch.where(signal_t, ab + true_mean - own_mean, ab), signal))
        rows["flat mean colour"].append(de00_fg(true_lab, torch.where(signal_t, true_mean.expand_as(ab), ab), signal))
        rows["strength"].append(de00_fg(true_lab, ab * factor, signal))
        rows["8 flips and turns"].append(de00_fg(true_lab, averaged, signal))
    print(f"{len(rows['model'])} validation galaxies, de00_fg (lower is better)")
    print("| prediction | de00_fg |\n|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {np.mean(values):.2f} |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
