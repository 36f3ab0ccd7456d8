"""Score models beside the baselines over a set of colour images, and write the report."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from .baselines import gray_ab, lut_ab
from ..models.checkpoint import LoadedModel
from ..color.lab import fit_chroma_to_gamut, lab_array_to_rgb8, rgb_to_lab
from .figures import comparison_figure, profile_figure, scatter_figure
from ..inference.predict import predict_ab
from ..io.atomic import atomic_write_text
from ..inference.diversity import uncertainty
from .metrics import LOWER_IS_BETTER, METRIC_NAMES, SIGNAL_L, MetricAccumulator
from ..inference.science import starforming_regions
from .science import CLUMP_CONTRASTS, INNER, OUTER, PREDICTED_EXCESSES, RADIAL_EDGES, RECALL_FOR_PRECISION, TRUE_EXCESS, RegionTally, ScienceAccumulator, lightness_clumps

AbPredictor = Callable[[torch.Tensor], torch.Tensor]  # (1, 1, H, W) L -> (1, 2, H, W) ab


@dataclass
class Method:
    name: str
    predict: AbPredictor
    spread: AbPredictor | None = None  # (1, 1, H, W) L -> (1, 1, H, W) predicted uncertainty, where the model has one


@dataclass
class Scored:
    """Per-method summaries, and what the report's figures need."""

    summaries: dict[str, dict[str, float]]
    accumulators: dict[str, MetricAccumulator]
    science: dict[str, ScienceAccumulator]
    clumps: RegionTally = field(default_factory=lambda: RegionTally(CLUMP_CONTRASTS))  # the colour-free baseline's regions
    examples: list[tuple[str, np.ndarray, dict[str, np.ndarray], np.ndarray]] = field(default_factory=list)


def methods_for(models: Sequence[tuple[str, LoadedModel]]) -> list[Method]:
    """The baselines (gray always; lut from the first model that carries its training table), then the models."""
    methods = [Method("gray", gray_ab)]
    table = next((m.lut_ab for _, m in models if m.lut_ab is not None), None)
    if table is not None:
        methods.append(Method("lut", lambda lightness, table=table: lut_ab(lightness, table)))
    for name, model in models:
        spread = (lambda lightness, model=model: uncertainty(model, lightness)) if model.has_uncertainty else None
        methods.append(Method(name, lambda lightness, model=model: predict_ab(model, lightness), spread))
    return methods


def score_images(
    images: Sequence[np.ndarray],
    labels: Sequence[int | None],
    names: Sequence[str],
    methods: Sequence[Method],
    examples: int = 0,
    progress: bool = True,
    science: bool = True,
) -> Scored:
    """Colour each (H, W, 3) uint8 image from its L alone with every method and score it; `science`
    False leaves out what the colour means (regions, profiles: most of the time on a large set)."""
    accumulators = {m.name: MetricAccumulator() for m in methods}
    accumulated = {m.name: ScienceAccumulator() for m in methods}
    calibration = {m.name: UncertaintyCalibration() for m in methods if m.spread is not None}
    chosen = set(np.linspace(0, len(images) - 1, num=min(examples, len(images)), dtype=int).tolist()) if examples else set()
    scored = Scored({}, accumulators, accumulated)
    for index, (rgb8, label) in enumerate(tqdm(list(zip(images, labels)), desc="scoring", unit="img", disable=not progress, leave=False)):
        rgb = torch.from_numpy(np.ascontiguousarray(rgb8, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]  # a copy: PIL arrays are read-only
        with torch.inference_mode():
            true_lab = rgb_to_lab(rgb)
        true_np = true_lab[0].permute(1, 2, 0).numpy()
        if science:
            true_regions = starforming_regions(true_np, TRUE_EXCESS)
            scored.clumps.add(*true_regions, [lightness_clumps(true_np[..., 0], c) for c in CLUMP_CONTRASTS])
        predictions = {}
        for method in methods:
            with torch.inference_mode():
                ab = method.predict(true_lab[:, :1]).float().cpu()
                # Scored as delivered: the colour the PNG can show, chroma fitted into sRGB.
                pred_lab = fit_chroma_to_gamut(torch.cat([true_lab[:, :1], ab], dim=1))
            pred_np = pred_lab[0].permute(1, 2, 0).numpy()
            pred_rgb8 = lab_array_to_rgb8(pred_np)  # already in gamut: only converted
            accumulators[method.name].add(true_np, pred_np, rgb8, pred_rgb8, label)
            if science:
                accumulated[method.name].add(true_np, pred_np, true_regions)
            if method.spread is not None:
                with torch.inference_mode():
                    spread = method.spread(true_lab[:, :1])[0, 0].numpy()
                calibration[method.name].add(true_np, pred_np, spread)
            predictions[method.name] = pred_rgb8
        if index in chosen:
            scored.examples.append((names[index], predictions["gray"], predictions, rgb8))
    scored.summaries = {
        name: {**acc.summary(), **(accumulated[name].summary() if science else {}), **(calibration[name].summary() if name in calibration else {})}
        for name, acc in accumulators.items()
    }
    return scored


def science_rows(scored: Scored) -> dict[str, dict[str, float]]:
    """The methods' summaries and the colour-free baseline's regions, for the science table."""
    return {**scored.summaries, CLUMPS: scored.clumps.summary()}


CLUMPS = "clumps of L"  # the colour-free baseline's row: star-forming regions from lightness alone
SCIENCE_NAMES = ("gradient_err", "sf_recall", "sf_precision", "sf_precision_at_recall", "excess_rank", "red_blue_auc", "sky_chroma",
                 "star_chroma", "true_star_chroma", "uncertainty_spearman")


@dataclass
class UncertaintyCalibration:
    """Does predicted uncertainty mean anything? Spearman correlation, over signal pixels pooled
    across images, between the predicted spread and the actual ab error."""

    per_image_pixels: int = 4000  # a fixed random subset per image keeps memory flat on big sets
    spreads: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def add(self, true_lab: np.ndarray, pred_lab: np.ndarray, spread: np.ndarray) -> None:
        signal = np.flatnonzero(true_lab[..., 0].ravel() > SIGNAL_L)
        if signal.size == 0:
            return
        chosen = np.random.default_rng(len(self.spreads)).choice(signal, size=min(signal.size, self.per_image_pixels), replace=False)
        error = np.linalg.norm((true_lab[..., 1:] - pred_lab[..., 1:]).reshape(-1, 2)[chosen], axis=1)
        self.spreads.append(spread.ravel()[chosen])
        self.errors.append(error)

    def summary(self) -> dict[str, float]:
        if not self.spreads:
            return {"uncertainty_spearman": float("nan")}
        from scipy.stats import spearmanr

        return {"uncertainty_spearman": float(spearmanr(np.concatenate(self.spreads), np.concatenate(self.errors)).statistic)}


def format_table(summaries: dict[str, dict[str, float]], metrics: Sequence[str] = METRIC_NAMES) -> str:
    """A Markdown table, one row per method; arrows say which way is better."""
    header = ["method"] + [f"{m} {_direction(m)}".rstrip() for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, summary in summaries.items():
        cells = [name] + [_fmt(summary.get(metric, math.nan), metric) for metric in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _direction(metric: str) -> str:
    """Which way is better; none for a star's chroma, which should match the truth's, not vanish."""
    if metric in ("star_chroma", "true_star_chroma"):
        return ""
    return "↓" if metric in LOWER_IS_BETTER or metric in ("gradient_err", "sky_chroma") else "↑"


def _fmt(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}" if metric in ("colour_r", "class_auc", "truth_class_auc", "auc_fg", "sf_recall", "sf_precision", "sf_precision_at_recall",
                                   "red_blue_auc", "uncertainty_spearman") else f"{value:.2f}"


def write_report(scored: Scored, report_dir: Path, context: dict, main_method: str) -> dict[str, Path]:
    """report.json, report.md, examples.png (grey | predicted | real) and colour_scatter.png."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": report_dir / "report.json", "markdown": report_dir / "report.md"}
    atomic_write_text(paths["json"], json.dumps({**context, "metrics": _jsonable(scored.summaries),
                                                 "colour_free_regions": _jsonable(scored.clumps.summary())}, indent=2))
    markdown = [f"# galcolor evaluation: {context.get('data', '')}", ""]
    markdown += [f"- {k}: {v}" for k, v in context.items() if k != "data"]
    markdown += ["", format_table(scored.summaries), ""]
    markdown.append("Signal pixels are those with true L > 15; `gray` leaves the image grey, `lut` paints the training split's mean ab for each L.")
    markdown += ["", "## Colour that carries physics", "", format_table(science_rows(scored), SCIENCE_NAMES), "",
                 f"`gradient_err`: |error| of the inner-minus-outer b* gradient (annuli {RADIAL_EDGES[INNER]}–{RADIAL_EDGES[INNER + 1]} vs "
                 f"{RADIAL_EDGES[OUTER]}–{RADIAL_EDGES[OUTER + 1]} second-moment radii); "
                 f"star-forming regions (`sf_`): compact bright regions at least {TRUE_EXCESS:g} b* bluer than the galaxy around them in the truth, "
                 f"found in each prediction at blue excesses {', '.join(f'{t:g}' for t in PREDICTED_EXCESSES)} and, for `{CLUMPS}` (sees no colour), "
                 f"as compact bright clumps of L at contrasts {', '.join(f'{t:g}' for t in CLUMP_CONTRASTS)}; a region counts as found where one touches it; "
                 f"recall and precision at each method's best-F1 threshold, and `sf_precision_at_recall`: its best precision at recall ≥ {RECALL_FOR_PRECISION:g}; "
                 "`excess_rank`: Spearman's rank correlation of the predicted blue excess with the true one over each galaxy's bright pixels, "
                 "averaged over galaxies (threshold-free; 0 for a flat colour); "
                 "`red_blue_auc`: ROC AUC of the predicted integrated b* separating the truth's red galaxies from its blue ones (Otsu's split of the true integrated b*); "
                 "`sky_chroma`: mean chroma of sky pixels (true L ≤ 15, 4 px or more from any signal; the truth's own: "
                 f"{_fmt(scored.summaries[main_method].get('true_sky_chroma', math.nan), 'sky_chroma')}); "
                 "`star_chroma` / `true_star_chroma`: mean chroma of point sources (separate, PSF-sized, bright components: "
                 "foreground stars and unresolved galaxies) predicted / true; "
                 "`uncertainty_spearman`: rank correlation of the model's predicted uncertainty (a classifier's spread, or an error head's expected error) with its actual ab error on signal pixels."]
    paths["profile"] = report_dir / "radial_profile.png"
    true_profile = scored.science[main_method].mean_profiles()[0]
    profile_figure(RADIAL_EDGES, true_profile, {name: acc.mean_profiles()[1] for name, acc in scored.science.items()}, paths["profile"])
    markdown += ["", "![radial colour profile](radial_profile.png)"]
    if scored.examples:
        paths["examples"] = report_dir / "examples.png"
        comparison_figure(
            [(name, grey, preds[main_method], real) for name, grey, preds, real in scored.examples], paths["examples"]
        )
        markdown += ["", f"![grey | {main_method} | real](examples.png)"]
    main = scored.accumulators[main_method]
    b_true = [m["b_true"] for m in main.per_image]
    b_pred = [m["b_pred"] for m in main.per_image]
    if len(b_true) >= 3:
        paths["scatter"] = report_dir / "colour_scatter.png"
        scatter_figure(
            b_true, b_pred, main.labels, paths["scatter"],
            xlabel="true integrated b*", ylabel=f"{main_method} integrated b*", title="Integrated galaxy colour",
        )
        markdown += ["", "![integrated colour](colour_scatter.png)"]
    atomic_write_text(paths["markdown"], "\n".join(markdown) + "\n")
    return paths


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _jsonable(value.item())
    return value
