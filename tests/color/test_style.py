"""Colour style: a model's default saturation, chosen on data, and the --style presets around it."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from galcolor.app.api import load_model
from galcolor.evaluation.baselines import gray_ab
from galcolor.models.checkpoint import SATURATION_KEY, save_model
from galcolor.app.cli import main
from galcolor.color.lab import lab_array_to_rgb8, rgb_array_to_lab, rgb_to_lab
from galcolor.training.data import load_split
from galcolor.evaluation.evaluate import Method, score_images
from galcolor.inference.predict import predict_ab


def _lightness(rgb8: np.ndarray) -> torch.Tensor:
    return rgb_to_lab(torch.from_numpy(rgb8.astype(np.float32) / 255.0).permute(2, 0, 1)[None])[:, :1]


def _chroma(png) -> float:
    """Mean ab length of a written colouring over the galaxy (on dark sky, 8-bit rounding is all the colour)."""
    lab = rgb_array_to_lab(np.asarray(Image.open(png).convert("RGB")) / 255.0)
    return float(np.linalg.norm(lab[..., 1:], axis=2)[lab[..., 0] > 15].mean())


@pytest.fixture(scope="module")
def half_saturated_model(tiny_model_path, few_galaxies, tmp_path_factory):
    root = tmp_path_factory.mktemp("styled")
    others = root / "noise"
    others.mkdir()
    rng = np.random.default_rng(0)
    for index in range(6):
        Image.fromarray(rng.integers(0, 256, (48, 48)).astype(np.uint8), mode="L").save(others / f"noise-{index}.png")
    out = root / "half.safetensors"
    assert main(["calibrate", str(few_galaxies), "--other", str(others), "--model", str(tiny_model_path), "-o", str(out),
                 "--val-fraction", "0.3", "--saturation", "0.5", "-q"]) == 0
    return out


def test_calibrate_stores_a_default_saturation_that_the_model_colours_with(half_saturated_model, few_galaxies):
    model = load_model(half_saturated_model)
    assert model.saturation == 0.5 and model.metadata[SATURATION_KEY] == 0.5
    lightness = _lightness(np.asarray(Image.open(sorted((few_galaxies / "spirals").glob("*.jpg"))[0]).convert("RGB")))
    full = predict_ab(model.with_style(saturation=1.0), lightness)
    assert full.abs().mean() > 0.5  # the comparison below means something only if there is colour
    assert torch.allclose(predict_ab(model, lightness), 0.5 * full, atol=1e-3)


def test_style_auto_uses_the_models_default_and_sdss_or_saturation_override_it(half_saturated_model, few_galaxies, tmp_path):
    source = sorted((few_galaxies / "spirals").glob("*.jpg"))[0]
    chroma = {}
    for name, flags in {"auto": [], "sdss": ["--style", "sdss"], "full": ["--saturation", "1"]}.items():
        out = tmp_path / name
        assert main(["colorize", str(source), "-o", str(out), "--model", str(half_saturated_model), "-q", *flags]) == 0
        chroma[name] = _chroma(out / (source.stem + ".png"))
    assert chroma["full"] > 1.0
    # Not exactly half: the tiny model's full colour overshoots sRGB and is fitted into its gamut.
    assert chroma["auto"] < 0.8 * chroma["full"]
    assert chroma["sdss"] == pytest.approx(chroma["full"], rel=0.1, abs=0.5)


def test_a_damaged_default_saturation_is_refused_in_one_line(half_saturated_model, tmp_path, capsys):
    model = load_model(half_saturated_model)
    damaged = tmp_path / "damaged.safetensors"
    save_model(model.__class__(**{**model.__dict__, "metadata": {**model.metadata, SATURATION_KEY: 3}}), damaged)
    assert main(["colorize", str(half_saturated_model), "-o", str(tmp_path / "out"), "--model", str(damaged)]) != 0
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and str(damaged) in error and "saturation" in error and "Traceback" not in error


def _rendered_at(rgb8: np.ndarray, strength: float) -> np.ndarray:
    lab = rgb_array_to_lab(rgb8 / 255.0)
    lab[..., 1:] *= strength
    return lab_array_to_rgb8(lab)


def test_the_shipped_default_beats_grey_on_sdss_and_on_galaxies_rendered_half_as_colourful(sdss_dir):
    """Surveys such as DECaLS render galaxies far paler than SDSS; at full SDSS strength the
    model's colour was no better than grey on such images (model card), the default must be."""
    model = load_model()
    held_out = load_split(sdss_dir, "val", progress=False)
    images = [image.permute(1, 2, 0).numpy() for image in held_out.images[:24]]
    methods = [Method("gray", gray_ab), Method("shipped", lambda lightness: predict_ab(model, lightness))]
    for strength in (1.0, 0.5):
        truth = [_rendered_at(image, strength) for image in images]
        scores = score_images(truth, held_out.labels[:24], [""] * 24, methods, progress=False).summaries
        assert scores["shipped"]["de00_fg"] < 0.9 * scores["gray"]["de00_fg"], strength


def test_evaluate_records_the_style_each_model_was_scored_with(half_saturated_model, few_galaxies, tmp_path, capsys):
    assert main(["evaluate", str(few_galaxies), "--split", "all", "--model", str(half_saturated_model), "-o", str(tmp_path / "a"), "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["styles"].values()) == [{"caution": 1.0, "saturation": 0.5}]
    assert main(["evaluate", str(few_galaxies), "--split", "all", "--model", str(half_saturated_model), "--style", "sdss",
                 "-o", str(tmp_path / "b"), "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["styles"].values()) == [{"caution": 0.0, "saturation": 1.0}]
