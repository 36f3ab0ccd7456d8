"""How well can a galaxy's overall colour be read from its grey image at all?

`scripts/error_budget.py` shows that most of the network's remaining error on SDSS is the colour of
each galaxy as a whole. This script asks whether something other than the network reads that
colour better. Each predictor is fitted on the training split only and predicts the galaxy's mean
ab over its signal pixels (true L > 15); on the validation split it reports

* r(b*): Pearson r of predicted vs true mean b* (the axis that separates red from blue galaxies),
* de00_fg: the network's colour shifted so that its mean is the predictor's, scored by evaluate's
  own `score_images` (full saturation, no caution). The network's own mean leaves its colour as is.

Predictors:

* the network's own mean colour;
* ridge regression on the network's pooled bottleneck features (what the caution also reads) and
  its own mean;
* gradient-boosted trees on hand-made measurements of the grey image: the light profile,
  concentration, size, shape, asymmetry, clumpiness, and the sky's noise texture (GZ2 cutouts are
  scaled to each galaxy's size, so the grain of the noise says how far the SDSS pixels were
  enlarged), with and without the network's own mean.

Needs scikit-learn (`pip install -e ".[analysis]"`). About 25 minutes on 2 CPU cores, most of it scoring.

    python scripts/mean_colour_ceiling.py ../shared/data/sdss-gz2 [model.safetensors]
"""

import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from galcolor.app.api import load_model
from galcolor.models.caution import pooled_features
from galcolor.color.lab import rgb_to_lab
from galcolor.training.data import load_split
from galcolor.evaluation.evaluate import Method, score_images
from galcolor.inference.predict import predict_ab
from galcolor.evaluation.metrics import SIGNAL_L
from galcolor.color.style import styled

SKY_L = 8  # below this, and away from anything brighter, a pixel is sky


def light_measurements(lightness: np.ndarray) -> list[float]:
    """Structure of the grey galaxy around the image centre, and the grain of the sky's noise."""
    height, width = lightness.shape
    rows, cols = np.mgrid[:height, :width]
    radius = np.hypot(rows - (height - 1) / 2, cols - (width - 1) / 2)
    signal = lightness > SIGNAL_L
    galaxy_light = np.where(signal, lightness, 0.0)
    total = galaxy_light.sum() + 1e-6
    profile = [lightness[(radius >= r) & (radius < r + 8)].mean() for r in range(0, min(height, width) // 2, 8)]
    areas = [(lightness > level).mean() for level in (10, 15, 25, 40, 60, 80)]
    order = np.argsort(radius[signal])
    enclosed = np.cumsum(lightness[signal][order]) / total
    radii_sorted = radius[signal][order] if order.size else np.zeros(1)
    r20, r50, r80, r90 = (radii_sorted[min(np.searchsorted(enclosed, q), radii_sorted.size - 1)] for q in (0.2, 0.5, 0.8, 0.9))
    weights = galaxy_light / total
    mean_row, mean_col = (weights * rows).sum(), (weights * cols).sum()
    moments = np.array([[(weights * (rows - mean_row) ** 2).sum(), (weights * (rows - mean_row) * (cols - mean_col)).sum()],
                        [(weights * (rows - mean_row) * (cols - mean_col)).sum(), (weights * (cols - mean_col) ** 2).sum()]])
    minor, major = np.linalg.eigvalsh(moments)
    asymmetry = np.abs(galaxy_light - galaxy_light[::-1, ::-1]).sum() / (2 * total)
    fine, coarse = ndimage.gaussian_filter(lightness, 2), ndimage.gaussian_filter(lightness, 4)
    clumps = [np.abs(lightness - fine)[signal].mean(), np.abs(fine - coarse)[signal].mean()] if signal.any() else [np.nan, np.nan]
    on_galaxy = np.percentile(lightness[signal], [10, 50, 90]).tolist() if signal.any() else [np.nan] * 3
    sky = ~ndimage.binary_dilation(lightness > SKY_L, iterations=6)
    if sky.sum() > 100:
        noise = lightness[sky].std() + 1e-6
        grain = [ndimage.gaussian_filter(lightness, s)[sky].std() / noise for s in (1, 2, 4)]
        sky_stats = [noise, sky.mean(), *grain]
    else:
        sky_stats = [np.nan, sky.mean(), np.nan, np.nan, np.nan]
    return [*profile, *areas, r20, r50, r80, r90, r90 / (r50 + 1), r80 / (r20 + 1), np.sqrt(major),
            np.sqrt(minor / (major + 1e-6)), asymmetry, *clumps, *on_galaxy, *sky_stats]


def measure(model, images) -> dict[str, np.ndarray]:
    """Per galaxy: true and predicted mean ab over signal pixels, pooled bottleneck, grey measurements."""
    out: dict[str, list] = {"true_mean": [], "own_mean": [], "pooled": [], "light": []}
    for image in images:
        true_lab = rgb_to_lab(image[None].float() / 255.0)
        with torch.inference_mode(), pooled_features(model.network) as pooled:
            ab = predict_ab(model, true_lab[:, :1]).float()
        signal = true_lab[0, 0] > SIGNAL_L
        if not signal.any():
            signal = torch.ones_like(signal)
        out["true_mean"].append(true_lab[0, 1:][:, signal].mean(dim=1).numpy())
        out["own_mean"].append(ab[0][:, signal].mean(dim=1).numpy())
        out["pooled"].append(pooled.mean()[0].numpy())
        out["light"].append(light_measurements(true_lab[0, 0].numpy().astype(np.float64)))
    return {name: np.asarray(values, dtype=np.float64) for name, values in out.items()}


def fitted_means(kind: str, train_features: np.ndarray, train_means: np.ndarray, val_features: np.ndarray) -> np.ndarray:
    """Predict mean a* and b* on the validation split from a model fitted on the training split."""
    columns = []
    for axis in range(2):
        if kind == "ridge":
            regressor = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 5, 30)))
        else:
            regressor = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.03, max_leaf_nodes=15,
                                                      min_samples_leaf=20, l2_regularization=1.0, random_state=0)
        columns.append(regressor.fit(train_features, train_means[:, axis]).predict(val_features))
    return np.stack(columns, axis=1)


def shifted_score(model, val, predicted_means: np.ndarray) -> float:
    """Mean de00_fg over the validation galaxies of the network's colour moved to the predicted means."""
    scores = []
    for image, label, relative, target in zip(val.images, val.labels, val.relatives, predicted_means):
        true_lab = rgb_to_lab(image[None].float() / 255.0)
        signal = true_lab[0, 0] > SIGNAL_L
        if not signal.any():
            continue
        with torch.inference_mode():
            ab = predict_ab(model, true_lab[:, :1]).float()
        own_mean = ab[0][:, signal].mean(dim=1).view(1, 2, 1, 1)
        shifted = torch.where(signal, ab - own_mean + torch.tensor(target, dtype=ab.dtype).view(1, 2, 1, 1), ab)
        method = Method("shifted", lambda lightness, colour=shifted: colour)
        scored = score_images([image.permute(1, 2, 0).numpy()], [label], [str(relative)], [method], progress=False)
        scores.append(scored.summaries["shifted"]["de00_fg"])
    return float(np.mean(scores))


def main(data_dir: str, model_path: str | None = None) -> None:
    torch.set_num_threads(2)
    model = styled(load_model(model_path), "sdss")
    train = load_split(Path(data_dir), "train", progress=False)
    val = load_split(Path(data_dir), "val", progress=False)
    seen, held_out = measure(model, train.images), measure(model, val.images)
    predictors = {"the network's own mean": held_out["own_mean"]}
    feature_sets = {
        "ridge on its pooled bottleneck + own mean": ("ridge", ["pooled", "own_mean"]),
        "boosted trees on grey measurements": ("trees", ["light"]),
        "boosted trees on grey measurements + own mean": ("trees", ["light", "own_mean"]),
    }
    for name, (kind, parts) in feature_sets.items():
        stack = lambda measured: np.hstack([measured[part] for part in parts])  # noqa: E731
        predictors[name] = fitted_means(kind, stack(seen), seen["true_mean"], stack(held_out))
    truth_b = held_out["true_mean"][:, 1]
    print(f"{len(train.images)} training, {len(val.images)} validation galaxies; network at full saturation, no caution")
    print("| mean colour from | r(b*) ↑ | de00_fg, network shifted to it ↓ |\n|---|---|---|")
    for name, means in predictors.items():
        print(f"| {name} | {np.corrcoef(means[:, 1], truth_b)[0, 1]:.3f} | {shifted_score(model, val, means):.2f} |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
