"""Choosing the survey whose colour style to imitate: `colorize --survey`, `galcolor.colorize(survey=)`
and the web app's survey control, with a model trained on two renderings of the same galaxies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import galcolor
from galcolor.app.cli import main
from galcolor.color.lab import rgb_array_to_lab


def _chroma(rgb8: np.ndarray) -> float:
    lab = rgb_array_to_lab(rgb8[..., :3])
    return float(np.linalg.norm(lab[..., 1:], axis=2)[lab[..., 0] > 15].mean())


@pytest.fixture(scope="module")
def galaxy(sdss_dir: Path) -> Path:
    return sorted((sdss_dir / "spirals").glob("*.jpg"))[0]


def test_colorize_survey_flag_changes_the_colour_strength(two_style_model_path, galaxy, tmp_path):
    for survey in ("vivid", "pale"):
        args = ["colorize", str(galaxy), "-o", str(tmp_path / survey), "--model", str(two_style_model_path), "--style", "sdss", "-q", "--survey", survey]
        assert main(args) == 0
    vivid = np.asarray(Image.open(tmp_path / "vivid" / f"{galaxy.stem}.png"))
    pale = np.asarray(Image.open(tmp_path / "pale" / f"{galaxy.stem}.png"))
    assert _chroma(vivid) > 1.5 * _chroma(pale)


def test_an_unknown_survey_is_one_line_naming_the_choices(two_style_model_path, galaxy, tmp_path, capsys):
    assert main(["colorize", str(galaxy), "-o", str(tmp_path), "--model", str(two_style_model_path), "--survey", "hst"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown survey 'hst'" in err and "auto, vivid, pale" in err
    assert not list(tmp_path.glob("*.png"))


def test_a_model_without_surveys_refuses_a_named_survey(tiny_model_path, galaxy, tmp_path, capsys):
    assert main(["colorize", str(galaxy), "-o", str(tmp_path), "--model", str(tiny_model_path), "--survey", "sdss"]) == 1
    assert "was not trained on named surveys" in capsys.readouterr().err


def test_the_api_takes_a_survey(two_style_model_path, galaxy):
    model = galcolor.load_model(two_style_model_path).with_style(caution_strength=0.0)
    image = np.asarray(Image.open(galaxy).convert("RGB"))
    assert _chroma(galcolor.colorize(image, model, survey="vivid")) > 1.5 * _chroma(galcolor.colorize(image, model, survey="pale"))
    auto = galcolor.colorize(image, model)  # the recogniser's choice: one of the two styles, or between them
    assert auto.shape == image.shape


def test_the_web_app_offers_the_models_surveys_and_says_which_it_used(two_style_model_path, galaxy, tmp_path):
    pytest.importorskip("gradio", reason="the web app needs: pip install 'galcolor[web]'")
    from galcolor.app import web

    choices = web.model_choices(two_style_model_path)
    assert web.known_surveys(choices)[:2] == ["vivid", "pale"]
    colorizer = web.Colorizer(choices, output_root=tmp_path / "results")
    _, colour_pale, _, _, status_pale = colorizer(str(galaxy), "launch", 0.0, "sdss", "pale")
    assert "Coloured as pale" in status_pale
    _, colour_vivid, _, _, _ = colorizer(str(galaxy), "launch", 0.0, "sdss", "vivid")
    assert _chroma(np.asarray(Image.open(colour_vivid))) > 1.5 * _chroma(np.asarray(Image.open(colour_pale)))
    *_, status_auto = colorizer(str(galaxy), "launch", 0.0, "sdss", "auto")
    assert "Survey auto: it looks most like" in status_auto


def test_every_tile_of_a_large_image_is_coloured_in_the_named_style(two_style_model_path, galaxy):
    """Tiles share one conditioning vector, from the frame's centre: a named survey reaches them all."""
    import torch

    from galcolor.color.lab import rgb_to_lab
    from galcolor.inference.predict import predict_ab_tiled

    model = galcolor.load_model(two_style_model_path).with_style(caution_strength=0.0)
    rgb = torch.from_numpy(np.asarray(Image.open(galaxy).convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    lightness = rgb_to_lab(rgb)[:, :1]
    signal = lightness[0, 0] > 15
    chroma = {}
    for survey in ("vivid", "pale"):
        ab = predict_ab_tiled(model.with_survey(survey), lightness, tile=96, overlap=16)  # 9 tiles
        chroma[survey] = float(ab[0].norm(dim=0)[signal].mean())
    assert chroma["vivid"] > 1.5 * chroma["pale"], chroma
    auto = predict_ab_tiled(model, lightness, tile=96, overlap=16)
    assert torch.isfinite(auto).all()
