"""A network whose decoder is told each galaxy's colour (the stage's estimate, or the user's hint): told
the same colour through every inference path, and told nothing where the stage is not trusted."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from conftest import galaxy_field, grey_frame, tiled_and_streamed
from galcolor.inference.galaxy_colour import shift_weight
from galcolor.inference.predict import network_lightness, predict_ab, predict_ab_tiled, told_output
from galcolor.models import build_model
from galcolor.models.device import full_precision

TILE, OVERLAP = 128, 32


def colour_conditioned(model, scale: float):
    """The same model with a colour-conditioned decoder: every earlier weight kept, the colour's FiLM
    drawn at `scale` (0: as a network grows it, computing what the earlier one did)."""
    config = dataclasses.replace(model.config, galaxy_colour_conditioned=True)
    network = build_model(config)
    missing = network.load_state_dict(model.network.state_dict(), strict=False).missing_keys
    assert all(key.startswith("galaxy_colour_film.") for key in missing)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for film in network.galaxy_colour_film.films:
            film.to_params.weight.copy_(torch.randn(film.to_params.weight.shape, generator=generator) * scale)
    return dataclasses.replace(model, network=network.to(memory_format=torch.channels_last).eval(), config=config)  # as load_model lays it out


@pytest.fixture(scope="module")
def told(staged):
    return colour_conditioned(staged, 0.3)


def _structure_change(first: torch.Tensor, second: torch.Tensor, lightness: torch.Tensor) -> float:
    """How much two colourings of one frame differ beyond the galaxy-colour shift: the spread of their
    difference over pixels that take the whole shift (where a shift alone differs by one constant)."""
    full = shift_weight(lightness)[0, 0] == 1
    return float((first - second)[0][:, full].std(dim=1).max())


def test_a_grown_colour_conditioned_network_colours_as_before(staged):
    lightness = galaxy_field(96, 96, seed=1)
    assert torch.allclose(predict_ab(colour_conditioned(staged, 0.0), lightness), predict_ab(staged, lightness), atol=1e-4)


def test_the_decoder_is_told_the_stages_estimate_or_the_hint(told):
    lightness = galaxy_field(96, 96, seed=2)
    _, _, target = told_output(told, network_lightness(told, lightness), lightness)
    verdicts = []
    predict_ab(told, lightness, verdicts)
    assert verdicts[0].galaxy_colour_from == "stage"
    assert np.allclose(target[0][0].tolist(), verdicts[0].galaxy_colour, atol=0.01)
    blue, red = (predict_ab(told.with_galaxy_colour(hint), lightness) for hint in ((-2.0, -15.0), (8.0, 20.0)))
    assert _structure_change(red, blue, lightness) > 0.3
    # a decoder that ignores the colour: two hints differ by the shift alone, and the measure says so
    untold = colour_conditioned(told, 0.0)
    first, second = (predict_ab(untold.with_galaxy_colour(hint), lightness) for hint in ((-2.0, -15.0), (8.0, 20.0)))
    assert _structure_change(first, second, lightness) < 0.01


def test_a_survey_the_stage_is_not_trusted_on_colours_as_the_network_it_grew_from(told, staged):
    """Told nothing, the colour FiLM is shut: such images keep the earlier network's colour exactly."""
    lightness = galaxy_field(96, 96, seed=3)
    stage = copy.deepcopy(told.galaxy_colour)
    with torch.no_grad():
        stage.trust.copy_(torch.tensor([1.0, 0.0]))
    doubted, before = (dataclasses.replace(model, galaxy_colour=stage) for model in (told, staged))
    assert torch.equal(predict_ab(doubted.with_survey("pale"), lightness), predict_ab(before.with_survey("pale"), lightness))
    assert (predict_ab(doubted.with_survey("vivid"), lightness) - predict_ab(before.with_survey("vivid"), lightness)).abs().max() > 0.3


def test_the_told_colour_is_the_same_whole_tiled_and_streamed(told):
    small = galaxy_field(120, 100, seed=5)
    assert torch.equal(predict_ab(told, small).cpu(), predict_ab_tiled(told, small, tile=TILE, overlap=OVERLAP))
    rgb, lightness = grey_frame(galaxy_field(300, 260, seed=6))
    tiled = {}
    for hint in ((-2.0, -15.0), (8.0, 20.0), None):  # two hints, and the stage's estimate
        tiled[hint], streamed = tiled_and_streamed(told.with_galaxy_colour(hint), rgb, lightness, TILE, OVERLAP)
        assert (streamed - tiled[hint]).abs().max() <= 0.05
    # the tiles are told the hint (a decoder that ignores it: below 1e-6)
    assert _structure_change(tiled[(-2.0, -15.0)], tiled[(8.0, 20.0)], lightness) > 0.01


def test_onnx_tells_the_decoder_as_pytorch_does(told, tmp_path):
    pytest.importorskip("onnxruntime")
    from galcolor.inference.export import OnnxColorizer, export_onnx

    export_onnx(told, tmp_path / "told.onnx")
    runner = OnnxColorizer(tmp_path / "told.onnx")
    lightness = torch.cat([galaxy_field(64, 96, seed=8), galaxy_field(64, 96, seed=9) * 0.7])
    exported = runner.predict_ab(lightness)
    with full_precision():  # the graph is fp32; PyTorch autocasts to bf16 on CPUs with bf16 units
        assert np.abs(exported - predict_ab(told, lightness).numpy()).max() < 0.1
        untold = predict_ab(colour_conditioned(told, 0.0), lightness).numpy()
    assert np.abs(exported - untold).max() > 1.0  # the told colour was there to be got wrong
    assert runner.description["galaxy_colour"]["told_to_decoder"]
