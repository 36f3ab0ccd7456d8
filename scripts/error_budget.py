"""Where a model's colour error on SDSS comes from: its prediction beside oracle repairs of it.

Each repair borrows one thing from the truth, so the drop in `de00_fg` says how much of the error
that thing explains:

* mean colour: the prediction shifted so that its mean ab over the galaxy (signal pixels) is the
  truth's; the structure inside the galaxy stays the model's.
* flat mean colour: the truth's mean ab painted flat over the galaxy; no structure at all.
* strength: the prediction times the one factor per image that fits the truth best (least squares).

And one repair that needs no truth: the mean over the 8 flips and quarter turns of the input
(test-time augmentation). Each galaxy is scored by evaluate's own `score_images` (chroma fitted
into sRGB, CIEDE2000 over pixels with true L > 15), and the scores averaged over galaxies, at full
saturation without caution (`--style sdss`).

    python scripts/error_budget.py ../shared/data/sdss-gz2 [model.safetensors]
"""

import sys
from pathlib import Path

import numpy as np
import torch

from galcolor.app.api import load_model
from galcolor.evaluation.baselines import gray_ab
from galcolor.color.lab import rgb_to_lab
from galcolor.training.data import load_split
from galcolor.evaluation.evaluate import Method, score_images
from galcolor.inference.predict import predict_ab
from galcolor.evaluation.metrics import SIGNAL_L
from galcolor.color.style import styled


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


def repairs(model, true_lab: torch.Tensor) -> list[Method]:
    """The network's colour of one galaxy and its repairs, as methods that evaluate can score.
    Each closes over this galaxy's truth, so each is scored on this galaxy alone."""
    with torch.inference_mode():
        ab = predict_ab(model, true_lab[:, :1]).float()
        averaged = over_flips_and_turns(model, true_lab[:, :1])
    signal = true_lab[0, 0] > SIGNAL_L
    true_mean = true_lab[0, 1:][:, signal].mean(dim=1).view(1, 2, 1, 1)
    own_mean = ab[0][:, signal].mean(dim=1).view(1, 2, 1, 1)
    predicted_fg, true_fg = ab[0][:, signal], true_lab[0, 1:][:, signal]
    factor = float((predicted_fg * true_fg).sum() / (predicted_fg * predicted_fg).sum().clamp(min=1e-6))
    fixed = {
        "model": ab,
        "mean colour": torch.where(signal, ab + true_mean - own_mean, ab),
        "flat mean colour": torch.where(signal, true_mean.expand_as(ab), ab),
        "strength": ab * factor,
        "8 flips and turns": averaged,
    }
    return [Method("gray", gray_ab)] + [Method(name, lambda lightness, colour=colour: colour) for name, colour in fixed.items()]


def main(data_dir: str, model_path: str | None = None) -> None:
    torch.set_num_threads(1)
    model = styled(load_model(model_path), "sdss")
    val = load_split(Path(data_dir), "val", progress=False)
    rows: dict[str, list[float]] = {}
    for image, label, relative in zip(val.images, val.labels, val.relatives):
        true_lab = rgb_to_lab(image[None].float() / 255.0)
        if not (true_lab[0, 0] > SIGNAL_L).any():
            continue
        scored = score_images([image.permute(1, 2, 0).numpy()], [label], [str(relative)], repairs(model, true_lab), progress=False)
        for name, summary in scored.summaries.items():
            rows.setdefault(name, []).append(summary["de00_fg"])
    print(f"{len(rows['model'])} validation galaxies, de00_fg (lower is better)")
    print("| prediction | de00_fg |\n|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {np.mean(values):.2f} |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
