"""Score models on each survey's held-out galaxies re-framed (galcolor.evaluation.framing): the training
crops, the published 424 x 424 frames, enlarged 2x, reduced 0.5x, off-centre and four to a field, with
`de00_fg` and `colour_r` beside `gray` and `lut`, and how many frames each model recognised as their
survey and how many its caution faded to grey. Cheap enough to run before and after a change with --limit.

Each SET is `PATH=SURVEY` (the held-out split of a training folder and the survey that rendered it);
`--frames424 PATH=PATH424` gives a set's 424 x 424 frames, matched by relative path. Each MODEL is
`NAME=FILE`; none: the shipped model.

    python scripts/framings.py --sets ../shared/data/sdss-gz2=sdss ../shared/data/decals=decals \
        --frames424 ../shared/data/sdss-gz2=../shared/data/sdss-gz2-424 --limit 40 [--json OUT.json]
"""

import argparse
import json
import sys
import time
from pathlib import Path

from compare_models import parse_model, parse_set

from galcolor.app.api import load_model
from galcolor.evaluation.framing import FRAMINGS, format_framings, reframe, score_framing
from galcolor.inference.judging import predict_ab_judged
from galcolor.training.data import images_to_score, load_split, read_colour


def frame_file(folder: Path, relative) -> Path:
    """The file of a galaxy's other framing: relative paths (the split's key) carry no suffix."""
    found = sorted((folder / relative.parent).glob(relative.name + ".*"))
    if not found:
        raise SystemExit(f"{folder}: no frame for {relative}")
    return found[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=parse_model, metavar="NAME=FILE")
    parser.add_argument("--sets", nargs="+", type=parse_set, required=True, metavar="PATH=SURVEY")
    parser.add_argument("--frames424", nargs="*", default=(), metavar="PATH=PATH424",
                        help="a set's 424 x 424 frames, by the same relative paths as its crops")
    parser.add_argument("--framings", nargs="+", choices=FRAMINGS, default=FRAMINGS)
    parser.add_argument("--limit", type=int, help="score the first N held-out galaxies of each set (default: all)")
    parser.add_argument("--judge-main-galaxy", action="store_true",
                        help="also score each model judging each frame by its main galaxy (galcolor.inference.judging, experimental)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    models = [(name, load_model(path)) for name, path in args.models] or [("shipped", load_model())]
    predictors = {}
    if args.judge_main_galaxy:
        predictors = {f"{name} judged": predict_ab_judged for name, _ in models}
        models += [(f"{name} judged", model) for name, model in models]
    frame_folders = {Path(a).resolve(): Path(b) for a, _, b in (text.partition("=") for text in args.frames424)}
    results = {}
    for path, survey, split in args.sets:
        dataset = load_split(path, split, progress=False)
        count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
        images, labels, names = (part[:count] for part in images_to_score(dataset))
        relatives = dataset.relatives[:count]
        folder = frame_folders.get(path.resolve())
        frames424 = [read_colour(frame_file(folder, relative)) for relative in relatives] if folder else None
        scores = []
        for framing in args.framings:
            if framing == "frame424" and frames424 is None:
                continue
            started = time.perf_counter()
            scores.append(score_framing(reframe(images, framing, frames424), labels, names,
                                        models, survey, framing, predictors))
            print(f"  {path.name} {framing}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        key = f"{path.name}={survey or '-'}:{split}"
        results[key] = [{"framing": s.framing, "galaxies": s.galaxies, "metrics": s.summaries, "recognised": s.recognised,
                         "faded": s.faded, "kept": s.kept} for s in scores]
        print(f"\n{key}, {count} held-out galaxies\n")
        print(format_framings(scores, [name for name, _ in models], survey))
        sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
