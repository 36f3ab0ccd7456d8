"""Per-survey quality of a model beside `gray` and `lut` on the same images: the per-survey table of docs/model-history.md.

Each SET is `PATH=SURVEY` (SURVEY: the model's name for the survey that rendered PATH, or `-` for
a survey it was not trained on) or `PATH=SURVEY:all` to score every image rather than the held-out
split (for sets never trained on). The model is scored as shipped (`--survey auto`), with the right
survey named where there is one, and with caution off and full saturation (`--style sdss`).

    python scripts/survey_table.py MODEL ../shared/data/sdss-gz2=sdss ../shared/data/decals=decals \
        /tmp/far/candels=-:all [--json OUT.json]
"""

import argparse
import json
import math
from pathlib import Path

from galcolor.app.api import load_model
from galcolor.evaluation.evaluate import methods_for, score_images
from galcolor.training.data import load_split

COLUMNS = ("de00_fg", "colour_r", "dcf")


def parse_set(text: str) -> tuple[Path, str | None, str]:
    path, _, survey = text.rpartition("=")
    survey, _, split = survey.partition(":")
    return Path(path), (None if survey == "-" else survey), split or "val"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("sets", nargs="+", type=parse_set, metavar="PATH=SURVEY[:all]")
    parser.add_argument("--saturation", type=float, help="colour at this saturation instead of the model's default (caution kept)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    model = load_model(args.model)
    if args.saturation is not None:
        model = model.with_style(saturation=args.saturation)
    results = {}
    print("| set | split | images | " + " | ".join(f"{m}: gray / lut / auto / named / `--style sdss`" for m in COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for path, survey, split in args.sets:
        candidates = [("auto", model)]
        if survey is not None:
            candidates.append(("named", model.with_survey(survey)))
        candidates.append(("sdss-style", model.with_style(0.0, 1.0)))
        dataset = load_split(path, split, progress=False)
        images = [image.permute(1, 2, 0).numpy() for image in dataset.images]
        summaries = score_images(images, dataset.labels, [str(r) for r in dataset.relatives], methods_for(candidates), progress=False).summaries
        results[f"{path}={survey or '-'}:{split}"] = summaries
        cells = []
        for metric in COLUMNS:
            values = [summaries.get(name, {}).get(metric, math.nan) for name in ("gray", "lut", "auto", "named", "sdss-style")]
            cells.append(" / ".join("–" if value is None or math.isnan(value) else f"{value:.3f}" if metric == "colour_r" else f"{value:.2f}"
                                    for value in values))
        print(f"| {path.name} ({survey or 'unseen survey'}) | {split} | {len(images)} | " + " | ".join(cells) + " |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
