"""Training on several surveys: each image carries its survey, each survey holds out its own share,
and validation reports every metric per survey."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from galcolor.errors import GalcolorError
from galcolor.models.config import ModelConfig
from galcolor.training.config import TrainConfig
from galcolor.training.data import load_folders
from galcolor.training.trainer import train
from galcolor.training.validation import survey_key

DECALS = Path(__file__).resolve().parents[3] / "shared" / "data" / "decals"
TINY = ModelConfig(arch="unet", base_width=4, depth=2)
QUICK = TrainConfig(epochs=1, batch_size=4, crop=32, num_threads=1, val_fraction=0.3)


@pytest.fixture(scope="module")
def few_decals(tmp_path_factory) -> Path:
    """10 real DECaLS cutouts and one file that is not an image at all."""
    if not DECALS.is_dir():
        pytest.skip(f"real DECaLS data not found at {DECALS}")
    root = tmp_path_factory.mktemp("decals")
    for path in sorted(DECALS.glob("*.jpg"))[:10]:
        shutil.copy(path, root / path.name)
    (root / "J999999.99+999999.9.jpg").write_bytes(b"not a jpeg")
    return root


def test_each_image_is_labelled_with_its_folder_or_the_survey_named_for_it(few_galaxies, few_decals):
    both = load_folders([few_galaxies, few_decals], "all", progress=False)
    assert both.survey_names() == [few_galaxies.name, few_decals.name]
    assert both.surveys.count(few_decals.name) == 10 and len(both.surveys) == len(both)

    named = load_folders([few_galaxies, few_decals], "all", progress=False, survey_names=["sdss", "decals"])
    assert named.survey_names() == ["sdss", "decals"]
    shared = load_folders([few_galaxies, few_galaxies], "all", progress=False, survey_names=["sdss", "sdss"])
    assert shared.survey_names() == ["sdss"] and len(shared) == 24  # two folders of one survey

    with pytest.raises(GalcolorError, match="3 survey names for 2 data folders"):
        load_folders([few_galaxies, few_decals], "all", progress=False, survey_names=["a", "b", "c"])


def test_every_survey_holds_out_its_own_share(few_galaxies, few_decals):
    val = load_folders([few_galaxies, few_decals], "val", val_fraction=0.3, progress=False, survey_names=["sdss", "decals"])
    train_part = load_folders([few_galaxies, few_decals], "train", val_fraction=0.3, progress=False, survey_names=["sdss", "decals"])
    for survey, total in (("sdss", 12), ("decals", 10)):
        held_out = val.surveys.count(survey)
        assert 1 <= held_out < total and held_out + train_part.surveys.count(survey) == total
    assert not set(val.relatives) & set(train_part.relatives)


def test_training_on_two_surveys_reports_each_and_lists_the_unreadable_file(few_galaxies, few_decals, tmp_path):
    lines: list[str] = []
    config = TrainConfig(**{**QUICK.__dict__, "survey_names": ("sdss", "decals")})
    result = train([few_galaxies, few_decals], tmp_path / "run", TINY, config, progress=False, log=lines.append)

    assert any(line.startswith("skipped ") and "J999999.99+999999.9.jpg" in line for line in lines), lines
    with open(tmp_path / "run" / "log.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    for survey in ("sdss", "decals"):
        for metric in ("de00_fg", "colour_r", "dcf", "psnr"):
            assert survey_key(survey, metric) in row, f"log.csv lacks {survey_key(survey, metric)}"
        assert 0 < float(row[survey_key(survey, "de00_fg")]) < 100
        assert any(f"\n    {survey}: de00_fg" in line for line in lines if line.startswith("epoch"))
    # The pooled figure lies between the two surveys' own figures.
    per_survey = sorted(float(row[survey_key(s, "de00_fg")]) for s in ("sdss", "decals"))
    assert per_survey[0] <= float(row["de00_fg"]) <= per_survey[1]
    assert result.best_metrics[survey_key("decals", "n_images")] >= 1
