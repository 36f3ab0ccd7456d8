"""The picture in docs/science.md: for a few held-out spirals, grey | predicted | predicted regions | truth |
true regions, star-forming regions outlined in cyan, and each predicted reading beside the truth's.

The spirals are chosen by a rule, not by eye: the val split of DATA_DIR's spirals in file-name order,
the first COUNT whose truth holds at least two star-forming regions.

    python scripts/science_figure.py ../shared/data/sdss-gz2 -o docs/images/science-spirals.png [--model M] [--count 4]
"""

import argparse
import io
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from galcolor.app.api import load_model
from galcolor.color.lab import lab_array_to_rgb8, rgb_to_lab
from galcolor.inference.arrays import colorize_lab
from galcolor.inference.science import TRUE_EXCESS, integrated_colour, starforming_regions
from galcolor.inference.science_outputs import science_of
from galcolor.io.atomic import atomic_write_bytes
from galcolor.training.data import load_split


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--count", type=int, default=4)
    args = parser.parse_args()
    model = load_model(args.model)
    val = load_split(args.data_dir, "val", progress=False)
    chosen = []
    for image, label, relative in sorted(zip(val.images, val.labels, val.relatives), key=lambda item: str(item[2])):
        if label != 1:
            continue
        with torch.inference_mode():
            true_lab = rgb_to_lab(image.float()[None] / 255.0)[0].permute(1, 2, 0).numpy().astype(np.float64)
        if starforming_regions(true_lab, TRUE_EXCESS)[1] >= 2:
            chosen.append((relative, image.permute(1, 2, 0).numpy(), true_lab))
        if len(chosen) == args.count:
            break
    titles = ("grey", "predicted", "predicted regions", "truth", "true regions")
    figure = Figure(figsize=(2.3 * len(titles), 2.6 * len(chosen)), facecolor="#111111")
    for row, (relative, rgb8, true_lab) in enumerate(chosen):
        verdicts = []
        predicted, _ = colorize_lab(rgb8.astype(np.float32) / 255.0, model, verdicts)
        reading, predicted_regions = science_of(model, predicted, verdicts[0] if verdicts else None)
        true_regions, true_count = starforming_regions(true_lab, TRUE_EXCESS)
        true_b = integrated_colour(true_lab)[1]
        grey = lab_array_to_rgb8(np.concatenate([true_lab[..., :1], np.zeros_like(true_lab[..., 1:])], -1))
        shown = lab_array_to_rgb8(predicted)
        panels = ((grey, None), (shown, None), (shown, predicted_regions), (rgb8, None), (rgb8, true_regions))
        for column, (picture, regions) in enumerate(panels):
            axes = figure.add_subplot(len(chosen), len(titles), row * len(titles) + column + 1)
            axes.imshow(picture)
            if regions is not None and regions.any():
                axes.contour(regions > 0, levels=[0.5], colors="cyan", linewidths=0.8)
            axes.set_xticks([]), axes.set_yticks([])
            if row == 0:
                axes.set_title(titles[column], color="#eeeeee", fontsize=9)
            if column == 2:
                red = f", P(red) {reading.red_probability:.2f}" if reading.red_probability is not None else ""
                axes.set_xlabel(f"b* {reading.integrated_b:+.1f}{red}, {reading.starforming_regions} regions", color="#eeeeee", fontsize=7)
            if column == 4:
                axes.set_xlabel(f"b* {true_b:+.1f}, {true_count} regions", color="#eeeeee", fontsize=7)
            if column == 0:
                axes.set_ylabel(Path(str(relative)).stem, color="#eeeeee", fontsize=7)
    figure.tight_layout()
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, facecolor=figure.get_facecolor())
    atomic_write_bytes(args.out, buffer.getvalue())
    print(f"{len(chosen)} held-out spirals -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
