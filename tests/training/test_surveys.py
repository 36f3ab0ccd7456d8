"""Training on several surveys: each image carries its survey, each survey holds out its own share,
and validation reports every metric per survey."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
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


def _signal_chroma(model, rgb8: np.ndarray) -> float:
    from galcolor.inference.arrays import colorize_lab

    predicted, truth = colorize_lab(rgb8.astype(np.float32) / 255.0, model)
    signal = truth[..., 0] > 15
    return float(np.hypot(predicted[..., 1], predicted[..., 2])[signal].mean())


def test_a_survey_conditioned_model_colours_in_each_surveys_style(two_style_model_path, few_galaxies):
    """Two surveys of the same galaxies, one rendering colour at a quarter of the other's strength:
    the grey input is the same, so only the survey named can make the colour differ."""
    from PIL import Image

    from galcolor.models.checkpoint import load_checkpoint

    model = load_checkpoint(two_style_model_path).with_style(caution_strength=0.0)
    assert model.config.surveys == ("vivid", "pale")

    image = np.asarray(Image.open(sorted(few_galaxies.rglob("*.jpg"))[0]).convert("RGB"))
    vivid_chroma = _signal_chroma(model.with_survey("vivid"), image)
    pale_chroma = _signal_chroma(model.with_survey("pale"), image)
    assert vivid_chroma > 1.5 * pale_chroma, (vivid_chroma, pale_chroma)
    with pytest.raises(GalcolorError, match="unknown survey 'hst'"):
        model.with_survey("hst")
    assert model.metadata["val_metrics"][survey_key("pale", "recognised")] >= 0  # the recogniser was fitted and scored


def test_survey_conditioning_needs_two_surveys(few_galaxies, tmp_path):
    config = TrainConfig(**{**QUICK.__dict__, "condition_on_survey": True})
    with pytest.raises(GalcolorError, match="at least two surveys"):
        train(few_galaxies, tmp_path / "run", TINY, config, progress=False, log=lambda text: None)


def _copy_some(source: Path, target: Path, names: list[Path]) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for path in names:
        shutil.copy(path, target / path.name)
    return target


def test_auto_recognises_held_out_images_of_two_clearly_different_surveys(sdss_dir, tmp_path):
    """SDSS and DECaLS differ in pixel scale, depth and noise: a conditioned model's recogniser,
    trained on some of each, names the survey of galaxies it never saw from their grey L alone."""
    import torch
    from PIL import Image

    from galcolor.color.lab import rgb_to_lab
    from galcolor.inference.survey import recognise_survey
    from galcolor.models.checkpoint import load_checkpoint

    if not DECALS.is_dir():
        pytest.skip(f"real DECaLS data not found at {DECALS}")
    sdss_files = sorted((sdss_dir / "spirals").glob("*.jpg"))[:16] + sorted((sdss_dir / "non_spirals").glob("*.jpg"))[:16]
    decals_files = sorted(DECALS.glob("*.jpg"))
    sdss = _copy_some(sdss_dir, tmp_path / "sdss", sdss_files)
    decals = _copy_some(DECALS, tmp_path / "decals", decals_files[:32])
    config = TrainConfig(epochs=10, batch_size=8, crop=64, num_threads=1, condition_on_survey=True, augment="none", lr=3e-3)
    result = train([sdss, decals], tmp_path / "run", ModelConfig(base_width=8, depth=3), config, progress=False, log=lambda text: None)
    model = load_checkpoint(result.best_path)

    right = 0
    held_out = [(path, "sdss") for path in sorted((sdss_dir / "spirals").glob("*.jpg"))[16:28]] + [(path, "decals") for path in decals_files[32:44]]
    for path, survey in held_out:
        rgb = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        probabilities = recognise_survey(model, rgb_to_lab(rgb)[:, :1])
        right += max(probabilities, key=probabilities.get) == survey
    assert right >= 0.8 * len(held_out), f"{right} of {len(held_out)} held-out galaxies recognised"
