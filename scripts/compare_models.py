"""Score several models side by side, at their defaults, on each survey's held-out split beside `gray` and
`lut`, and say whether the first is worse than any other on any set: the check a model must pass before
it ships (the model card's comparison table).

Each SET is `PATH=SURVEY` (the held-out split of a training folder; SURVEY names the survey that rendered
it, or `-` for one no model was trained on) or `PATH=SURVEY:all` (every image, for sets never trained on).
Each MODEL is `NAME=FILE`; the first is the candidate. `--full-strength` scores every model with caution
off at saturation 1 as well; `--true-colour-hint` also scores every model given each galaxy's true
flux-weighted mean colour as its hint, at full strength (an oracle: how much of the error the galaxy's colour
holds, and how well each lays out a colour it is told). `--layout` also prints how each lays the colour out inside the
galaxy (best with `--true-colour-hint --only spirals`: layout alone, where star-forming regions are). `--saturations` scores the candidate at other saturations: how its saturation per survey is chosen.

    python scripts/compare_models.py new=new.safetensors three=prev-three.safetensors sdss=prev-sdss.safetensors \
        --sets ../shared/data/sdss-gz2=sdss ../shared/data/sdss-more=sdss ../shared/data/decals=decals [--json OUT.json]
"""

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import torch

from galcolor.app.api import load_model
from galcolor.color.lab import rgb_to_lab
from galcolor.evaluation.evaluate import Method, methods_for, score_images
from galcolor.inference.predict import predict_ab
from galcolor.models.galaxy_colour import flux_weighted_mean
from galcolor.training.data import SPIRAL_KINDS, images_to_score, load_split

COLUMNS = ("de00_fg", "colour_r", "dcf")
LAYOUT_COLUMNS = ("gradient_err", "sf_recall", "sf_precision", "sf_precision_at_recall", "excess_rank")
LOWER_IS_BETTER = {"de00_fg": True, "colour_r": False, "dcf": True}


def parse_set(text: str) -> tuple[Path, str | None, str]:
    path, _, survey = text.rpartition("=")
    survey, _, split = survey.partition(":")
    return Path(path), (None if survey == "-" else survey), split or "val"


def parse_model(text: str) -> tuple[str, Path]:
    name, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"{text}: give NAME=FILE")
    return name, Path(path)


def true_colour_method(name: str, model, images) -> Method:
    """The model given each image's true flux-weighted mean colour as its hint; score_images calls
    each method once per image, in order, so the hints are taken in that order."""
    hints = []
    for rgb8 in images:
        rgb = torch.from_numpy(rgb8.astype("float32") / 255.0).permute(2, 0, 1)[None]
        lab = rgb_to_lab(rgb)
        hints.append(tuple(float(v) for v in flux_weighted_mean(lab[:, :1], lab[:, 1:])[0][0]))
    queue = iter(hints)
    return Method(f"{name} true-colour hint", lambda lightness: predict_ab(model.with_galaxy_colour(next(queue)).with_style(0.0, 1.0), lightness))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=parse_model, metavar="NAME=FILE")
    parser.add_argument("--sets", nargs="+", type=parse_set, required=True, metavar="PATH=SURVEY[:all]")
    parser.add_argument("--full-strength", action="store_true", help="also score each model with caution off at saturation 1")
    parser.add_argument("--true-colour-hint", action="store_true", help="also score every model given each galaxy's true mean colour")
    parser.add_argument("--saturations", type=float, nargs="+", default=(), metavar="F",
                        help="also score the candidate at each of these saturations, for every survey alike (caution kept): "
                             "how a saturation per survey is chosen")
    parser.add_argument("--layout", action="store_true",
                        help="also print the colour's layout inside each galaxy: bulge-minus-disk gradient_err, star-forming "
                             "regions (best-F1 recall and precision, precision at recall 0.3) and excess_rank (docs/science.md)")
    parser.add_argument("--only", choices=tuple(SPIRAL_KINDS), help="score only the sets' spirals (or non-spirals)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    models = [(name, load_model(path)) for name, path in args.models]
    candidate = models[0][0]
    results, worse = {}, []
    for path, survey, split in args.sets:
        chosen = list(models)
        if args.full_strength:
            chosen += [(f"{name} full", model.with_style(0.0, 1.0)) for name, model in models]
        chosen += [(f"{candidate} at {value:g}", models[0][1].with_style(saturation=value)) for value in args.saturations]
        dataset = load_split(path, split, progress=False)
        images, labels, relatives = images_to_score(dataset, args.only)
        methods = methods_for(chosen)
        if args.true_colour_hint:
            methods += [true_colour_method(name, model, images) for name, model in models]
        # Uncertainty and (without --layout) the science are not in the table: not computed, a large share of the time.
        methods = [dataclasses.replace(method, spread=None) for method in methods]
        summaries = score_images(images, labels, relatives, methods, progress=False, science=args.layout).summaries
        key = f"{path.name}={survey or '-'}:{split}" + (f" {args.only}" if args.only else "")
        columns = COLUMNS + (LAYOUT_COLUMNS if args.layout else ())
        results[key] = summaries
        names = [m.name for m in methods]
        print(f"\n{key}, {len(images)} images")
        print("| method | " + " | ".join(columns) + " |")
        print("|---|" + "---|" * len(columns))
        for name in names:
            row = summaries.get(name, {})
            print(f"| {name} | " + " | ".join(_cell(row.get(metric), metric) for metric in columns) + " |")
        for name, _ in models[1:]:
            new, old = summaries[candidate]["de00_fg"], summaries[name]["de00_fg"]
            if new > old:
                worse.append(f"{key}: {candidate} {new:.3f} > {name} {old:.3f} de00_fg")
        sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    print("\n" + ("\n".join(f"WORSE {line}" for line in worse) if worse else f"{candidate} is no worse than any other model on any set (de00_fg)"))
    return 1 if worse else 0


def _cell(value, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3f}" if metric in ("colour_r", "excess_rank") else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
