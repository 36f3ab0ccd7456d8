"""`galcolor demo`: the Hubble Deep Field coloured from its L alone, and beside it a few galaxies of
each survey the model was trained on that it never saw (their held-out split)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import GalcolorError, InputError
from ..evaluation.evaluate import Scored, format_table, methods_for, score_images, write_report
from ..io.atomic import atomic_write_text, write_png
from ..io.paths import find_inputs
from ..models.checkpoint import LoadedModel
from ..training.config import TrainConfig
from ..training.data import read_colour
from ..training.split import split_of

HELD_OUT_PER_SURVEY = 2


def training_folders(model: LoadedModel) -> list[tuple[Path, str]]:
    """(folder, survey) for each folder the model's checkpoint says it was trained on (paths as
    training was given them: relative ones count from the current folder)."""
    recorded = model.metadata.get("data_dir") or []
    recorded = [recorded] if isinstance(recorded, str) else list(recorded)
    names = (model.metadata.get("train_config") or {}).get("survey_names") or [Path(d).name for d in recorded]
    return [(Path(d), name) for d, name in zip(recorded, names)]


def held_out_galaxies(folders: list[tuple[Path, str]], val_fraction: float, per_survey: int = HELD_OUT_PER_SURVEY,
                      log=print) -> dict[str, list[tuple[str, np.ndarray]]]:
    """For each survey, `per_survey` (name, RGB uint8) galaxies of its folders' val split, spread
    evenly over them in path order (the same choice on every machine)."""
    candidates: dict[str, list[tuple[Path, str]]] = {}
    for folder, survey in folders:
        if not folder.is_dir():
            continue
        found, _ = find_inputs([folder])
        candidates.setdefault(survey, []).extend((path, f"{folder.name}/{relative}") for path, relative in found
                                                 if split_of(relative, val_fraction) == "val")
    chosen: dict[str, list[tuple[str, np.ndarray]]] = {}
    for survey, items in candidates.items():
        items.sort(key=lambda item: item[1])
        picks = sorted(set(np.linspace(0, len(items) - 1, num=min(per_survey, len(items)), dtype=int).tolist())) if items else []
        for index in picks:
            path, name = items[index]
            try:
                chosen.setdefault(survey, []).append((name, read_colour(path)))
            except InputError as err:
                log(f"skipped {err}")
    return chosen


def run_demo(model: LoadedModel, name: str, out: Path, held_out_dirs: list[Path] | None, log=print) -> dict:
    """Colour and score the Hubble Deep Field and the held-out galaxies; write the colourized HDF,
    the report and one figure with every row. `held_out_dirs` None: the model's own training folders."""
    from skimage.data import hubble_deep_field

    for folder in held_out_dirs or []:
        if not Path(folder).is_dir():
            raise GalcolorError(f"{folder}: not a folder of images (--held-out)")
    candidates = [(name, model)]
    if model.cautious:  # show what caution changed, beside it
        candidates.append((f"{name} --style sdss", model.with_style(0.0, 1.0)))
    methods = methods_for(candidates)
    scored = score_images([hubble_deep_field()], [None], ["Hubble Deep Field"], methods, examples=1, progress=False)
    write_png(out / "hubble_deep_field.colorized.png", np.asarray(scored.examples[0][2][name]))
    val_fraction = (model.metadata.get("train_config") or {}).get("val_fraction", TrainConfig().val_fraction)
    folders = training_folders(model) if held_out_dirs is None else [(Path(d), Path(d).name) for d in held_out_dirs]
    per_survey: dict[str, Scored] = {}
    for survey, galaxies in held_out_galaxies(folders, val_fraction, log=log).items():
        names = [f"{survey}: {Path(galaxy).stem}" for galaxy, _ in galaxies]
        per_survey[survey] = score_images([rgb for _, rgb in galaxies], [None] * len(galaxies), names, methods, examples=len(galaxies), progress=False)
        scored.examples += per_survey[survey].examples
    paths = write_report(scored, out, {"data": "skimage.data.hubble_deep_field()", "model": str(model.source)}, name)
    if per_survey:
        sections = [f"\n## Held-out galaxies: {survey} ({len(s.examples)})\n\n{format_table(s.summaries)}" for survey, s in per_survey.items()]
        atomic_write_text(paths["markdown"], paths["markdown"].read_text() + "".join(sections) + "\n")
    return {"metrics": scored.summaries, "held_out": {survey: s.summaries for survey, s in per_survey.items()}, "paths": paths,
            "looked_in": [str(folder) for folder, _ in folders]}
