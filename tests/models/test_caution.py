"""Caution: colour fades towards grey on images unlike the training survey, and only there."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from galcolor.app.api import load_model
from galcolor.models.caution import Caution
from galcolor.app.cli import main
from galcolor.color.lab import rgb_to_lab
from galcolor.inference.predict import predict_ab, predict_ab_tiled


def test_confidence_is_full_near_the_training_features_and_zero_far_away():
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(400, 8, generator=generator)
    held_out = torch.randn(100, 8, generator=generator)
    others = torch.randn(50, 8, generator=generator) * 0.5 + 6.0
    caution = Caution.fit(train, held_out, others)
    assert caution.confidence(held_out).mean() > 0.9
    assert (caution.confidence(others) == 0).float().mean() >= 0.9
    halfway = (held_out[:1] + others[:1]) / 2
    assert 0.0 <= float(caution.confidence(halfway)) <= 1.0


def test_calibration_images_no_farther_than_the_training_survey_are_refused():
    generator = torch.Generator().manual_seed(1)
    train = torch.randn(300, 4, generator=generator)
    with pytest.raises(ValueError, match="no farther"):
        Caution.fit(train, torch.randn(50, 4, generator=generator), torch.randn(50, 4, generator=generator) * 0.1)


def noise_images(folder, count=6, size=48):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        pixels = rng.integers(0, 256, (size, size)).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"noise-{index}.png")
    return folder


@pytest.fixture(scope="module")
def calibrated_path(tiny_model_path, few_galaxies, tmp_path_factory):
    """The tiny model calibrated against pure noise: the most unlike a galaxy an image can be."""
    root = tmp_path_factory.mktemp("calibrated")
    others = noise_images(root / "noise")
    out = root / "calibrated.safetensors"
    code = main(["calibrate", str(few_galaxies), "--other", str(others), "--model", str(tiny_model_path), "-o", str(out),
                 "--val-fraction", "0.3", "-q"])
    assert code == 0
    return out


def test_caution_lowers_saturation_on_pure_noise(calibrated_path):
    model = load_model(calibrated_path)
    assert model.caution is not None
    noise = torch.from_numpy(np.random.default_rng(5).uniform(0, 100, (1, 1, 48, 48)).astype(np.float32))
    careless = predict_ab(model.with_style(0.0, 1.0), noise)
    careful = predict_ab(model, noise)
    assert careful.abs().mean() < 0.5 * careless.abs().mean()


def test_caution_leaves_training_survey_galaxies_their_colour(calibrated_path, few_galaxies):
    model = load_model(calibrated_path)
    path = sorted(few_galaxies.glob("*/*.jpg"))[0]
    rgb = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    lightness = rgb_to_lab(rgb)[:, :1]
    assert torch.allclose(predict_ab(model, lightness), predict_ab(model.with_style(0.0, 1.0), lightness), atol=0.5)


def test_a_tiled_image_gets_one_caution_verdict(calibrated_path):
    """Faded evenly: every tile of a noise image carries the same factor, so no tile stands out."""
    model = load_model(calibrated_path)
    noise = torch.from_numpy(np.random.default_rng(6).uniform(0, 100, (1, 1, 80, 96)).astype(np.float32))
    careless = predict_ab_tiled(model.with_style(0.0, 1.0), noise, tile=48, overlap=8)
    careful = predict_ab_tiled(model, noise, tile=48, overlap=8)
    ratio = careful.abs().sum() / careless.abs().sum()
    assert torch.allclose(careful, careless * ratio, atol=1e-3)


def test_style_and_caution_flags_change_the_output(calibrated_path, tmp_path):
    source = noise_images(tmp_path / "in", count=1) / "noise-0.png"
    chroma = {}
    for style in (["--style", "sdss"], ["--style", "auto"], ["--style", "sdss", "--saturation", "0"]):
        out = tmp_path / ("out" + "".join(style))
        assert main(["colorize", str(source), "-o", str(out), "--model", str(calibrated_path), "-q", *style]) == 0
        rgb = np.asarray(Image.open(out / "noise-0.png").convert("RGB"), dtype=np.int16)
        chroma[" ".join(style)] = float(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean())
    assert chroma["--style sdss --saturation 0"] <= 1.0  # grey, up to 8-bit rounding
    assert chroma["--style auto"] < chroma["--style sdss"]


def test_calibrate_refuses_too_few_other_images(tiny_model_path, few_galaxies, tmp_path, capsys):
    others = noise_images(tmp_path / "few", count=2)
    code = main(["calibrate", str(few_galaxies), "--other", str(others), "--model", str(tiny_model_path), "-o", str(tmp_path / "c.safetensors")])
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "at least 5" in error and "Traceback" not in error


@pytest.mark.parametrize("command", ["calibrate", "fit-uncertainty"])
def test_a_model_is_never_written_over_the_model_it_extends(command, tiny_model_path, few_galaxies, tmp_path, capsys):
    model = tmp_path / "mine.safetensors"
    shutil.copy(tiny_model_path, model)
    before = model.read_bytes()
    extra = ["--other", str(noise_images(tmp_path / "others", count=6))] if command == "calibrate" else []
    code = main([command, str(few_galaxies), *extra, "--model", str(model), "-o", str(tmp_path / "." / "mine.safetensors"), "-q"])
    assert code == 1 and model.read_bytes() == before
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "would replace the model it extends" in error


def test_calibrate_reports_its_limits_as_json(calibrated_path, tiny_model_path, few_galaxies, tmp_path, capsys):
    others = noise_images(tmp_path / "noise")
    out = tmp_path / "again.safetensors"
    assert main(["calibrate", str(few_galaxies), "--other", str(others), "--model", str(tiny_model_path), "-o", str(out),
                 "--val-fraction", "0.3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["limits"]["all"]
    assert report["full_colour_within"] < report["grey_beyond"]
    assert load_model(out).metadata["caution_calibration"]["other"] == [str(others)]


def test_the_shipped_model_fades_the_hubble_deep_field_but_not_sdss_galaxies(sdss_dir):
    """The calibrated shipped model: HST colour it cannot know is left grey; SDSS keeps its colour."""
    from skimage.data import hubble_deep_field

    model = load_model()
    assert model.caution is not None

    def chroma(rgb8: np.ndarray, chosen) -> float:
        lightness = rgb_to_lab(torch.from_numpy(rgb8.astype(np.float32) / 255.0).permute(2, 0, 1)[None])[:, :1]
        return float(predict_ab(chosen, lightness).abs().mean())

    deep_field = hubble_deep_field()
    assert chroma(deep_field, model) < 0.2 * chroma(deep_field, model.with_style(0.0))
    galaxy = np.asarray(Image.open(sorted((sdss_dir / "spirals").glob("*.jpg"))[0]).convert("RGB"))
    assert chroma(galaxy, model) == pytest.approx(chroma(galaxy, model.with_style(0.0)), rel=0.05)


def test_a_caution_per_survey_scores_an_image_against_the_survey_it_looks_like():
    """Two surveys far apart in feature space: an image at the second's centre keeps its colour when
    recognised as the second, and is faded when taken for the first, whose Gaussian it lies far from."""
    from galcolor.models.caution import SurveyCaution

    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(300, 8, generator=generator), torch.randn(300, 8, generator=generator) + 6.0
    others = torch.randn(60, 8, generator=generator) * 0.5 + torch.tensor([4.0, 4, 4, 4, -4, -4, -4, -4])
    caution = SurveyCaution.fit([first[:250], second[:250]], [first[250:], second[250:]], others)
    image = second[250:]
    as_second, as_first = torch.tensor([[0.0, 1.0]]).expand(50, 2), torch.tensor([[1.0, 0.0]]).expand(50, 2)
    assert caution.confidence(image, as_second).mean() > 0.9
    assert caution.confidence(image, as_first).mean() < 0.1
    for survey in ([1.0, 0.0], [0.0, 1.0]):
        assert caution.confidence(others, torch.tensor([survey]).expand(60, 2)).mean() < 0.1
    assert torch.equal(Caution.from_tensors(caution.tensors()).limits, caution.limits)  # survives a checkpoint


def test_calibrate_with_surveys_fits_one_caution_each(two_style_model_path, few_galaxies, tmp_path, capsys):
    from conftest import paler_copies
    from galcolor.models.caution import SurveyCaution

    pale = paler_copies(few_galaxies, tmp_path / "pale", chroma=0.25)
    out = tmp_path / "per-survey.safetensors"
    assert main(["calibrate", str(few_galaxies), str(pale), "--surveys", "vivid", "pale", "--other", str(noise_images(tmp_path / "noise")),
                 "--model", str(two_style_model_path), "-o", str(out), "--val-fraction", "0.3", "--json"]) == 0
    limits = json.loads(capsys.readouterr().out)["limits"]
    assert set(limits) == {"vivid", "pale"} and all(v["full_colour_within"] < v["grey_beyond"] for v in limits.values())
    assert isinstance(load_model(out).caution, SurveyCaution)
    code = main(["calibrate", str(few_galaxies), "--surveys", "dusty", "--other", str(tmp_path / "noise"),
                 "--model", str(two_style_model_path), "-o", str(tmp_path / "bad.safetensors")])
    error = capsys.readouterr().err.strip()
    assert code == 1 and error.count("\n") == 0 and "dusty" in error
