"""How different, how smooth and how plausible `colorize --samples` colourings are.

For SDSS validation galaxies and a classification model, draws N colourings per galaxy (as
`colorize --samples N` does) and reports, over signal pixels (true L above metrics.SIGNAL_L):
- the mean pairwise ab distance between a galaxy's samples (how different they are);
- roughness: the mean ab change between horizontally neighbouring signal pixels, for the samples,
  for per-pixel (speckled) draws from the same distributions, for the single best guess (annealed
  mean) and for the truth;
- the mean ab error against the truth, of a sample and of the single best guess;
- calibration: the pairwise distance over a sample's distance from the truth. Were the
  distribution calibrated, the truth would be just another draw, and the ratio 1; above 1 the
  samples are spread wider than the errors warrant, below 1 narrower. TEMPERATURE is
  `colorize --sample-temperature`.

    python scripts/sample_diversity.py ../shared/data/sdss-gz2 runs/unet16-cls/best.safetensors [N] [GALAXIES] [TEMPERATURE]
"""

import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from galcolor.app.api import load_model
from galcolor.color.lab import rgb_to_lab
from galcolor.training.data import load_split
from galcolor.inference.diversity import sample_ab
from galcolor.inference.predict import predict_ab
from galcolor.evaluation.metrics import SIGNAL_L

SPECKLE_CORRELATION = 0.3  # pixels: noise this short-range is as good as independent per pixel


def roughness(ab: torch.Tensor, signal: torch.Tensor) -> float:
    both = signal[:, 1:] & signal[:, :-1]
    return float((ab[:, :, 1:] - ab[:, :, :-1]).norm(dim=0)[both].mean())


def main(data_dir: str, model_path: str, count: str = "4", galaxies: str = "50", temperature: str = "1") -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = load_model(Path(model_path)).with_style(0.0, 1.0)  # the network's own distribution, no caution
    val = load_split(Path(data_dir), "val", progress=False)
    stats: dict[str, list[float]] = {k: [] for k in ("pairwise", "rough_samples", "rough_speckled", "rough_mean", "rough_truth",
                                                     "error_sample", "error_mean")}
    used = 0
    for image in val.images[: int(galaxies)]:
        lab = rgb_to_lab(image[None].float() / 255)
        signal = lab[0, 0] > SIGNAL_L
        if signal.sum() < 50:
            continue
        used += 1
        lightness, truth = lab[:, :1], lab[0, 1:]
        samples = [s[0] for s in sample_ab(model, lightness, int(count), seed=used, temperature=float(temperature))]
        speckled = [s[0] for s in sample_ab(model, lightness, 2, seed=used, correlation=SPECKLE_CORRELATION, temperature=float(temperature))]
        mean = predict_ab(model, lightness)[0].float().cpu()
        stats["pairwise"].append(np.mean([float((a - b).norm(dim=0)[signal].mean()) for a, b in combinations(samples, 2)]))
        stats["rough_samples"].append(np.mean([roughness(s, signal) for s in samples]))
        stats["rough_speckled"].append(np.mean([roughness(s, signal) for s in speckled]))
        stats["rough_mean"].append(roughness(mean, signal))
        stats["rough_truth"].append(roughness(truth, signal))
        stats["error_sample"].append(np.mean([float((s - truth).norm(dim=0)[signal].mean()) for s in samples]))
        stats["error_mean"].append(float((mean - truth).norm(dim=0)[signal].mean()))
    print(f"{used} galaxies, {count} samples each at temperature {temperature}, ab units over signal pixels")
    for name, values in stats.items():
        print(f"{name}: {np.mean(values):.2f}")
    print(f"calibration (pairwise / error_sample, 1 when calibrated): {np.mean(stats['pairwise']) / np.mean(stats['error_sample']):.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
