"""Draw docs/model-history.md's colour_r curve from the runs of `scripts/colour_r_curve.sh`.

Reads RUN_DIR/n*/scores.json (survey_table's figures), counts each run's training galaxies from
its config.json, and plots colour_r (with its 95 % interval over the scored images) and de00_fg
(with `lut` and `gray` of the largest run) on each held-out set against that number.

    python scripts/plot_colour_r_curve.py runs/curve docs/images/colour-r-curve.png
"""

import argparse
import csv
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402


COLOUR_R_TARGET = 0.76  # issue 15's target on SDSS


def fisher_interval(r: float, n: int) -> tuple[float, float]:
    """95 % interval of a Pearson r over n images (Fisher's z); how much the scored images alone move it."""
    spread = 1.96 / math.sqrt(n - 3)
    return math.tanh(math.atanh(r) - spread), math.tanh(math.atanh(r) + spread)


def training_images(config: dict) -> int:
    """The run's training-set size, as its config.json and the data folder's hash split give it."""
    from galcolor.training.data import load_split

    return len(load_split(Path(config["data_dir"][0]), "train", config["train"]["val_fraction"],
                          config["train"]["max_images"], progress=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    runs = sorted((p for p in args.run_dir.glob("n*") if (p / "scores.json").exists()), key=lambda p: int(p.name[1:]))
    points = []
    for run in runs:
        scores = json.loads((run / "scores.json").read_text())
        epochs = sum(1 for _ in csv.DictReader((run / "log.csv").open()))
        config = json.loads((run / "config.json").read_text())
        images = training_images(config)
        steps = epochs * (images // config["train"]["batch_size"])
        points.append((images, steps, scores))
        print(f"{run.name}: {images} training galaxies, {epochs} epochs, {steps} steps")
    sets = list(points[0][2])
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name in sets:
        label = Path(name.partition("=")[0]).name
        sizes = [p[0] for p in points]
        for axis, metric in zip(axes, ("colour_r", "de00_fg")):
            values = [p[2][name]["auto"][metric] for p in points]
            if metric == "colour_r":
                low, high = zip(*(fisher_interval(v, p[2][name]["auto"]["n_images"]) for v, p in zip(values, points)))
                axis.errorbar(sizes, values, yerr=[[v - lo for v, lo in zip(values, low)], [hi - v for v, hi in zip(values, high)]],
                              fmt="o-", capsize=3, label=f"{label} val (95 % over images)")
                continue
            line, = axis.plot(sizes, values, "o-", label=f"{label} val")
            for baseline, style in (("lut", "--"), ("gray", ":")):
                axis.axhline(points[-1][2][name][baseline][metric], color=line.get_color(), linestyle=style, label=f"{label} {baseline}")
    axes[0].axhline(COLOUR_R_TARGET, color="grey", linestyle="--", label=f"target {COLOUR_R_TARGET}")
    for axis, metric in zip(axes, ("colour_r (higher is better)", "de00_fg (lower is better)")):
        axis.set_xscale("log")
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xticks([p[0] for p in points], [f"{p[0]:,}" for p in points])
        axis.set_xlabel("SDSS training galaxies (sdss-more subsets, equal steps)")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle("each run from scratch, " + ", ".join(f"{p[1]:,}" for p in points) + " steps; scored by its last checkpoint", fontsize=9)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_suffix(".tmp.png")
    figure.savefig(temporary, dpi=110)
    temporary.replace(args.out)


if __name__ == "__main__":
    main()
