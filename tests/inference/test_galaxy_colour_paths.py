"""Each galaxy at its own colour and each survey at its own strength, the same through every path."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import galaxy_field, grey_frame, tiled_and_streamed
from galcolor.app.cli import main
from galcolor.color.lab import lab_array_to_rgb8, rgb_to_lab
from galcolor.inference.hints import colour_of_reference
from galcolor.models.device import full_precision
from galcolor.models.galaxy_colour import flux_weighted_mean
from galcolor.inference.predict import network_input, network_lightness, predict_ab, predict_ab_tiled


TILE, OVERLAP = 128, 32


def mean_colour(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    return flux_weighted_mean(lightness, ab)[0][0]


def test_the_stage_estimate_is_the_colour_of_the_galaxy(staged):
    """The stage reads the canonical lightness the network sees; the output's mean is taken over the
    user's own L, the lightness the picture shows."""
    lightness = galaxy_field(96, 96, seed=1)
    ab = predict_ab(staged.with_style(saturation=1.0), lightness)
    seen = network_lightness(staged, lightness)
    x = network_input(staged, seen)
    weights = torch.softmax(staged.network.condition_of(x)[1].float(), dim=1)
    expected = staged.galaxy_colour.estimate(x, weights)[0][0]
    # Within the bf16 rounding of the recogniser's weights where inference autocasts (CPUs with bf16 units).
    assert (mean_colour(lightness, ab) - expected).abs().max() < 0.5
    unshifted = predict_ab(dataclasses.replace(staged, galaxy_colour=None).with_style(saturation=1.0), lightness)
    assert (mean_colour(lightness, unshifted) - expected).abs().max() > 2.0


def test_a_blue_and_a_red_hint_give_a_bluer_and_a_redder_galaxy(staged):
    lightness = galaxy_field(96, 96, seed=2)
    blue = mean_colour(lightness, predict_ab(staged.with_galaxy_colour((-2.0, -15.0)), lightness))
    red = mean_colour(lightness, predict_ab(staged.with_galaxy_colour((8.0, 20.0)), lightness))
    assert red[1] - blue[1] > 25 and red[0] - blue[0] > 7
    assert abs(float(blue[1]) + 15) < 2.5  # the hint is the galaxy's colour, not faded by the survey's saturation


def test_per_survey_strength_gives_the_same_pixels_whole_tiled_and_streamed(staged):
    """A frame that fits one tile: whole and tiled are the same code. A larger one: tiles and streamed
    bands share one survey, one galaxy colour and one strength, within the float16 that holds ab."""
    small = galaxy_field(120, 100, seed=5)
    assert torch.equal(predict_ab(staged, small).cpu(), predict_ab_tiled(staged, small, tile=TILE, overlap=OVERLAP))

    rgb, lightness = grey_frame(galaxy_field(300, 260, seed=6))
    tiled, streamed = tiled_and_streamed(staged, rgb, lightness, TILE, OVERLAP)
    assert (streamed - tiled).abs().max() <= 0.05
    unshifted = predict_ab_tiled(dataclasses.replace(staged, galaxy_colour=None), lightness, tile=TILE, overlap=OVERLAP)
    assert (tiled - unshifted).abs().max() > 1.0  # the shift is there to be got wrong


def test_each_survey_colours_at_its_own_strength(staged):
    lightness = galaxy_field(96, 96, seed=7)
    vivid, pale = (staged.with_survey(name) for name in ("vivid", "pale"))
    full = dataclasses.replace(staged, survey_saturation=None, saturation=1.0)
    for chosen, strength in ((vivid, 1.0), (pale, 0.4)):
        own = predict_ab(chosen, lightness)
        unscaled = predict_ab(full.with_survey(chosen.survey), lightness)
        assert torch.allclose(own, unscaled * strength, atol=1e-4)
    assert staged.with_style(saturation=0.7).survey_saturation is None  # a saturation the user sets holds for every survey


def test_onnx_colours_each_galaxy_and_survey_as_pytorch(staged, tmp_path):
    pytest.importorskip("onnxruntime")
    from galcolor.inference.export import OnnxColorizer, export_onnx

    export_onnx(staged, tmp_path / "staged.onnx")
    runner = OnnxColorizer(tmp_path / "staged.onnx")
    lightness = torch.cat([galaxy_field(64, 96, seed=8), galaxy_field(64, 96, seed=9) * 0.7])
    with full_precision():  # the graph is fp32; PyTorch autocasts to bf16 on CPUs with bf16 units (0.6 ab apart on one)
        assert np.abs(runner.predict_ab(lightness) - predict_ab(staged, lightness).numpy()).max() < 0.1
    assert runner.description["galaxy_colour"]["included"]


def _write(path, lab: np.ndarray) -> None:
    Image.fromarray(lab_array_to_rgb8(lab)).save(path)


def _galaxy_lab(a: float, b: float, size: int = 80) -> np.ndarray:
    """A galaxy of one colour, dim enough (L up to about 70) that its colour fits in sRGB."""
    lightness = galaxy_field(size, size, seed=3)[0, 0].numpy() * 0.7
    return np.stack([lightness, np.full_like(lightness, a), np.full_like(lightness, b)], axis=-1)


def test_colour_from_a_reference_brings_the_galaxy_to_its_colour(staged, tmp_path, two_style_model_path):
    grey, reference = tmp_path / "grey.png", tmp_path / "reference.jpg"
    _write(grey, _galaxy_lab(0.0, 0.0))
    _write(reference, _galaxy_lab(-4.0, -14.0, size=130))  # another size, as another survey's cutout would be
    assert main(["colorize", str(grey), "-o", str(tmp_path / "out"), "--model", str(two_style_model_path),
                 "--colour-from", str(reference), "-q"]) == 0
    out = np.asarray(Image.open(tmp_path / "out" / "grey.png").convert("RGB"), dtype=np.float32) / 255.0
    lab = rgb_to_lab(torch.from_numpy(out).permute(2, 0, 1)[None])
    colour, wanted = mean_colour(lab[:, :1], lab[:, 1:]), colour_of_reference(reference)
    assert abs(wanted[1] + 14) < 2  # the reference is as blue as it was made
    assert abs(float(colour[0]) - wanted[0]) < 2 and abs(float(colour[1]) - wanted[1]) < 2


@pytest.mark.parametrize("problem", ["grey", "missing", "not an image", "bad numbers"])
def test_a_bad_hint_is_refused_in_one_line(problem, tmp_path, two_style_model_path, capsys):
    grey = tmp_path / "grey.png"
    _write(grey, _galaxy_lab(0.0, 0.0))
    reference = tmp_path / "reference.png"
    hint = ["--colour-from", str(reference)]
    if problem == "grey":
        _write(reference, _galaxy_lab(0.0, 0.0))
    elif problem == "not an image":
        reference.write_text("no pixels here")
    elif problem == "bad numbers":
        hint = ["--galaxy-colour", "-3,lots"]
    code = main(["colorize", str(grey), "-o", str(tmp_path / "out"), "--model", str(two_style_model_path), *hint])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert (str(reference) in err) if problem != "bad numbers" else ("-3,lots" in err)
    assert not (tmp_path / "out" / "grey.png").exists()


def test_a_reference_list_gives_each_input_its_own_colour_and_names_a_bad_one(tmp_path, two_style_model_path, capsys):
    import json

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("blue", "red", "broken", "unlisted"):
        _write(inputs / f"{name}.png", _galaxy_lab(0.0, 0.0))
    _write(tmp_path / "blue-ref.png", _galaxy_lab(-3.0, -15.0))
    _write(tmp_path / "red-ref.png", _galaxy_lab(6.0, 18.0))
    (tmp_path / "refs.csv").write_text("in/blue.png,blue-ref.png\nin/red.png,red-ref.png\nin/broken.png,nowhere.png\n")
    code = main(["colorize", str(inputs), "-o", str(tmp_path / "out"), "--model", str(two_style_model_path),
                 "--colour-from", str(tmp_path / "refs.csv"), "--json"])
    files = {Path(f["source"]).stem: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert code == 1
    assert files["broken"]["status"] == "failed" and "nowhere.png" in files["broken"]["message"]
    assert files["blue"]["colour"]["galaxy_colour_from"] == "hint" and files["unlisted"]["colour"]["galaxy_colour_from"] != "hint"
    assert files["red"]["colour"]["galaxy_colour"][1] - files["blue"]["colour"]["galaxy_colour"][1] > 25





def test_a_survey_the_stage_is_not_trusted_on_keeps_the_networks_colour(staged):
    lightness = galaxy_field(96, 96, seed=10)
    stage = copy.deepcopy(staged.galaxy_colour)
    with torch.no_grad():
        stage.trust.copy_(torch.tensor([1.0, 0.0]))
    doubted = dataclasses.replace(staged, galaxy_colour=stage)
    without = dataclasses.replace(staged, galaxy_colour=None)
    assert torch.allclose(predict_ab(doubted.with_survey("pale"), lightness), predict_ab(without.with_survey("pale"), lightness), atol=1e-5)
    assert (predict_ab(doubted.with_survey("vivid"), lightness) - predict_ab(without.with_survey("vivid"), lightness)).abs().max() > 1.0
    verdicts = []
    predict_ab(doubted.with_survey("pale"), lightness, verdicts)
    assert verdicts[0].galaxy_colour is None and verdicts[0].galaxy_colour_from == "network"


def _with_stars(lightness: torch.Tensor, stars) -> torch.Tensor:
    """The field with PSF-sized point sources (1.3 px rms, peak L 80) added at these (y, x)."""
    height, width = lightness.shape[-2:]
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    out = lightness.clone()
    for cy, cx in stars:
        out[0, 0] += 80.0 * torch.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 1.3**2))
    return out.clamp(0.0, 100.0)


def _unshifting(model):
    return dataclasses.replace(model, metadata={**model.metadata, "point_sources_unshifted": True})


def test_a_star_keeps_its_own_colour_whatever_the_galaxys(staged):
    lightness = _with_stars(galaxy_field(200, 200, seed=11), [(14, 14)])  # on sky, away from the galaxies
    star = (slice(12, 17), slice(12, 17))
    galaxy = (slice(90, 110), slice(90, 110))
    for model, star_moves in ((_unshifting(staged), False), (staged, True)):
        blue = predict_ab(model.with_galaxy_colour((-2.0, -15.0)), lightness)[0]
        red = predict_ab(model.with_galaxy_colour((8.0, 20.0)), lightness)[0]
        assert (red[1][galaxy] - blue[1][galaxy]).mean() > 25  # the galaxy takes its hint
        moved = float((red[1][star] - blue[1][star]).abs().mean())
        assert (moved > 20) if star_moves else (moved < 0.5), moved


def _far_colour(model):
    """The model with a stage that estimates a colour far from what the network paints (the same for
    both surveys), so that the shift a star must not take is large whatever the test network learnt."""
    stage = copy.deepcopy(model.galaxy_colour)
    with torch.no_grad():
        stage.head[-1].weight.zero_()
        stage.head[-1].bias.zero_()
        stage.centre.copy_(torch.tensor([[15.0, 30.0], [12.0, 25.0]]))
    return dataclasses.replace(model, galaxy_colour=stage)


def test_unshifted_stars_are_the_same_pixels_whole_tiled_streamed_and_in_onnx(staged, tmp_path):
    staged = _far_colour(staged)
    model = _unshifting(staged)
    height, width = 300, 260
    # Stars across the edges of streamed bands (40 rows) and of tiles (128 px, 32 overlap).
    rgb, lightness = grey_frame(_with_stars(galaxy_field(height, width, seed=12), [(40, 30), (119, 245), (160, 14), (279, 100)]))
    tiled, streamed = tiled_and_streamed(model, rgb, lightness, TILE, OVERLAP)
    assert (streamed - tiled).abs().max() <= 0.05
    assert (tiled - predict_ab_tiled(staged, lightness, tile=TILE, overlap=OVERLAP)).abs().max() > 1.0  # the stars were there to be got wrong
    pytest.importorskip("onnxruntime")
    from galcolor.inference.export import OnnxColorizer, export_onnx

    from galcolor.inference.export import PARITY_LIMIT_AB

    small = _with_stars(galaxy_field(200, 160, seed=13), [(14, 14), (186, 150)])
    exported = {}
    for name, chosen in (("unshifted", model), ("shifted", staged)):
        export_onnx(chosen, tmp_path / f"{name}.onnx")
        exported[name] = OnnxColorizer(tmp_path / f"{name}.onnx").predict_ab(small)
    # The graph is fp32; PyTorch autocasts to bf16 on CPUs with bf16 units (0.63 ab apart on an AMD EPYC with AVX512-BF16).
    with full_precision():
        assert np.abs(exported["unshifted"] - predict_ab(model, small).numpy()).max() < PARITY_LIMIT_AB
    assert np.abs(exported["unshifted"] - exported["shifted"])[0, :, 12:17, 12:17].mean() > 1.0  # the graph leaves the star unshifted
