"""`galcolor demo`: the Hubble Deep Field coloured from its L alone, and beside it a few galaxies of
each survey the model was trained on that it never saw: its training folders' held-out split where
they are on this machine, otherwise the held-out galaxies that galcolor ships (demo_galaxies/)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path, PurePosixPath
from typing import NamedTuple

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

SHIPPED_SOURCE = "shipped with galcolor; the shipped model never trained on them"


class Galaxy(NamedTuple):
    name: str
    """Where it came from: '<folder name>/<path in the folder>' or the shipped file's name."""
    label: str
    """Its name in the figure, after the survey."""
    rgb: np.ndarray
    folder: Path | None
    """The training folder whose held-out split it was taken from; None for a shipped galaxy."""


def training_folders(model: LoadedModel) -> list[tuple[Path, str]]:
    """(folder, survey) for each folder the model's checkpoint says it was trained on (paths as
    training was given them: relative ones count from the current folder)."""
    recorded = model.metadata.get("data_dir") or []
    recorded = [recorded] if isinstance(recorded, str) else list(recorded)
    names = (model.metadata.get("train_config") or {}).get("survey_names") or [Path(d).name for d in recorded]
    return [(Path(d), name) for d, name in zip(recorded, names)]


def held_out_galaxies(folders: list[tuple[Path, str]], val_fraction: float, per_survey: int = HELD_OUT_PER_SURVEY,
                      log=print) -> dict[str, list[Galaxy]]:
    """For each survey, `per_survey` galaxies of its folders' val split, spread evenly over them in
    path order (the same choice on every machine)."""
    candidates: dict[str, list[tuple[Path, str, Path]]] = {}
    for folder, survey in folders:
        if not folder.is_dir():
            continue
        found, _ = find_inputs([folder])
        candidates.setdefault(survey, []).extend((path, f"{folder.name}/{relative}", folder) for path, relative in found
                                                 if split_of(relative, val_fraction) == "val")
    chosen: dict[str, list[Galaxy]] = {}
    for survey, items in candidates.items():
        items.sort(key=lambda item: item[1])
        picks = sorted(set(np.linspace(0, len(items) - 1, num=min(per_survey, len(items)), dtype=int).tolist())) if items else []
        for index in picks:
            path, name, folder = items[index]
            try:
                # The name has no suffix, and DECaLS names end in ".0": the last part whole, not its stem.
                chosen.setdefault(survey, []).append(Galaxy(name, PurePosixPath(name).name, read_colour(path), folder))
            except InputError as err:
                log(f"skipped {err}")
    return chosen


def shipped_galaxies_folder() -> Path:
    return Path(str(resources.files("galcolor") / "demo_galaxies"))


def shipped_galaxies(surveys: list[str] | None = None, log=print) -> dict[str, list[Galaxy]]:
    """The held-out galaxies galcolor ships, by survey (a file's name is '<survey>-<original stem>.jpg');
    only those of `surveys` unless it is None."""
    chosen: dict[str, list[Galaxy]] = {}
    for path in sorted(shipped_galaxies_folder().glob("*.jpg")):
        survey, _, stem = path.stem.partition("-")
        if surveys is not None and survey not in surveys:
            continue
        try:
            chosen.setdefault(survey, []).append(Galaxy(path.name, stem, read_colour(path), None))
        except InputError as err:
            log(f"skipped {err}")
    return chosen


def source_of(galaxies: list[Galaxy]) -> str:
    """Where a survey's galaxies came from, in words, for the report and the returned dict."""
    folders = list(dict.fromkeys(str(g.folder) for g in galaxies if g.folder is not None))
    return f"from the held-out split of {' and '.join(folders)}" if folders else SHIPPED_SOURCE


def listing(names: list[str], source: str) -> str:
    """The galaxies of a report section by name; shipped ones with where their credits are (some
    are CC BY: the figure shows them)."""
    named = ", ".join(f"`{name}`" for name in names)
    return f"{named} (credits: {shipped_galaxies_folder() / 'CREDITS.md'})" if source == SHIPPED_SOURCE else named


def galaxies_to_show(model: LoadedModel, held_out_dirs: list[Path] | None, val_fraction: float, log=print) -> dict[str, list[Galaxy]]:
    """The galaxies to show, by survey. `held_out_dirs` None: the model's training folders' held-out
    split, and the shipped galaxies for each of its surveys with none here (for every shipped
    survey when the model records none); otherwise the val split of exactly those folders."""
    if held_out_dirs is not None:
        return held_out_galaxies([(Path(d), Path(d).name) for d in held_out_dirs], val_fraction, log=log)
    folders = training_folders(model)
    found_here = held_out_galaxies(folders, val_fraction, log=log)
    surveys = list(dict.fromkeys(survey for _, survey in folders))
    lacking = [survey for survey in surveys if survey not in found_here]
    either = {**shipped_galaxies(lacking if surveys else None, log=log), **found_here}
    return {survey: either[survey] for survey in (surveys or either) if survey in either}


def run_demo(model: LoadedModel, name: str, out: Path, held_out_dirs: list[Path] | None, log=print) -> dict:
    """Colour and score the Hubble Deep Field and the held-out galaxies; write the colourized HDF,
    the report and one figure with every row. `held_out_dirs` None: the model's own training
    folders, or where they are not here the galaxies galcolor ships."""
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
    per_survey: dict[str, Scored] = {}
    galaxies_by_survey = galaxies_to_show(model, held_out_dirs, val_fraction, log=log)
    for survey, galaxies in galaxies_by_survey.items():
        per_survey[survey] = score_images([g.rgb for g in galaxies], [None] * len(galaxies), [f"{survey}: {g.label}" for g in galaxies],
                                          methods, examples=len(galaxies), progress=False)
        scored.examples += per_survey[survey].examples
    paths = write_report(scored, out, {"data": "skimage.data.hubble_deep_field()", "model": str(model.source)}, name)
    sources = {survey: source_of(galaxies) for survey, galaxies in galaxies_by_survey.items()}
    names = {survey: [g.name for g in galaxies] for survey, galaxies in galaxies_by_survey.items()}
    if per_survey:
        sections = [f"\n## Held-out galaxies: {survey} ({len(s.examples)}, {sources[survey]})\n\n{listing(names[survey], sources[survey])}\n\n"
                    f"{format_table(s.summaries)}" for survey, s in per_survey.items()]
        atomic_write_text(paths["markdown"], paths["markdown"].read_text() + "".join(sections) + "\n")
    return {"metrics": scored.summaries, "held_out": {survey: s.summaries for survey, s in per_survey.items()},
            "held_out_from": sources, "held_out_galaxies": names, "paths": paths,
            "looked_in": [str(folder) for folder, _ in training_folders(model)] if held_out_dirs is None else [str(d) for d in held_out_dirs]}
