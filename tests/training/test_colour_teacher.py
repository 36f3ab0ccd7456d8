"""Teacher forcing of the galaxy-colour-conditioned network: what it is told in training, and that a
network trained so follows the colour it is told."""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

import numpy as np
import pytest
import torch

from conftest import paler_copies
from galcolor.app.api import load_model
from galcolor.color.lab import lab_array_to_rgb8
from galcolor.errors import GalcolorError
from galcolor.inference.predict import network_output
from galcolor.models.conditioning import GALAXY_COLOUR_SCALE, galaxy_colour_input
from galcolor.models import build_model
from galcolor.models.config import ModelConfig
from galcolor.models.galaxy_colour import flux_weighted_mean
from galcolor.training.colour_teacher import teacher_colours, told_colours, true_galaxy_colours
from galcolor.training.config import TrainConfig
from galcolor.training.split import GalaxySet
from galcolor.training.trainer import train


def _galaxy(a: float, b: float, size: int = 48) -> torch.Tensor:
    """(3, size, size) uint8 sRGB of a round galaxy of one colour on black sky."""
    y, x = np.mgrid[:size, :size]
    lightness = 75.0 * np.exp(-((y - size / 2) ** 2 + (x - size / 2) ** 2) / (2 * (size / 6) ** 2))
    lab = np.stack([lightness, np.full_like(lightness, a), np.full_like(lightness, b)], axis=-1).astype(np.float32)
    return torch.from_numpy(lab_array_to_rgb8(lab)).permute(2, 0, 1)


def test_the_colour_told_in_training_is_each_images_own_mean():
    colours = [(6.0, 14.0), (-3.0, -12.0), (0.0, 0.0)]
    images = [_galaxy(a, b) for a, b in colours] + [torch.zeros(3, 48, 48, dtype=torch.uint8)]  # the last: no galaxy at all
    dataset = GalaxySet(images, [None] * 4, [PurePosixPath(f"{k}.png") for k in range(4)], [])
    means, signal = true_galaxy_colours(dataset)
    assert signal.tolist() == [True, True, True, False]
    # sRGB's 8 bits round the colour of each pixel by about an ab unit
    assert torch.allclose(means[:3], torch.tensor(colours), atol=1.5)


def test_an_untold_survey_is_never_told_and_an_unknown_one_is_refused():
    images = [_galaxy(6.0, 14.0), _galaxy(-3.0, -12.0), _galaxy(1.0, 2.0)]
    dataset = GalaxySet(images, [None] * 3, [PurePosixPath(f"{k}.png") for k in range(3)], [], surveys=["sdss", "hubble", "sdss"])
    colours, tellable = teacher_colours(dataset, ("hubble",))
    assert tellable.tolist() == [True, False, True] and abs(float(colours[1, 1]) + 12.0) < 1.5
    told = told_colours(colours, tellable, noise=0.0, dropout=0.0, generator=torch.Generator())
    assert told[:, 2].tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(GalcolorError, match="jwst"):
        teacher_colours(dataset, ("jwst",))


def test_told_colours_are_noisy_and_sometimes_withheld():
    colours = torch.tensor([[5.0, 10.0]]).repeat(4000, 1)
    signal = torch.ones(4000, dtype=torch.bool)
    signal[:100] = False
    told = told_colours(colours, signal, noise=6.0, dropout=0.25, generator=torch.Generator().manual_seed(0))
    known = told[:, 2]
    assert known[:100].sum() == 0  # an image without signal is never told a colour
    assert abs(float(1 - known[100:].mean()) - 0.25) < 0.03  # the share withheld
    assert (told[known == 0, :2] == 0).all()  # 'unknown' carries no colour
    values = told[known == 1, :2] * GALAXY_COLOUR_SCALE
    assert abs(float(values[:, 1].mean()) - 10.0) < 0.4
    # sigma ~ U(0, 6): the spread of the told b* is sqrt(E[sigma^2]) = 6 / sqrt(3)
    assert abs(float(values[:, 1].std()) - 6.0 / 3**0.5) < 0.3
    exact = told_colours(colours[100:110], signal[100:110], noise=0.0, dropout=0.0, generator=torch.Generator())
    assert torch.equal(exact, galaxy_colour_input(colours[100:110]))


@pytest.fixture(scope="module")
def told_model_path(few_galaxies, tmp_path_factory):
    """A tiny colour-conditioned U-Net trained on real galaxies twice, as they are and much bluer, with
    the same L: only the colour it is told can tell the two apart."""
    root = tmp_path_factory.mktemp("told")
    bluer = paler_copies(few_galaxies, root / "bluer", chroma=1.0, shift=(-4.0, -24.0))
    config = TrainConfig(epochs=20, batch_size=4, crop=64, num_threads=1, augment="none", lr=1e-2,
                         galaxy_colour_noise=0.0, galaxy_colour_dropout=0.0)
    model = ModelConfig(base_width=8, depth=2, galaxy_colour_conditioned=True)
    return train([few_galaxies, bluer], root / "run", model, config, progress=False, log=lambda text: None).last_path


def test_a_network_trained_so_follows_the_colour_it_is_told(told_model_path, few_galaxies):
    """On the same grey galaxy, told its own colour and then the bluer copy's, the network's own output
    (no galaxy-colour shift: it has no stage) moves most of the way between the two."""
    from PIL import Image

    from galcolor.color.lab import rgb_to_lab

    model = load_model(told_model_path, device="cpu")
    path = sorted(few_galaxies.rglob("*.jpg"))[0]
    lab = rgb_to_lab(torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255.0)
    lightness = lab[:, :1]
    own = flux_weighted_mean(lightness, lab[:, 1:])[0]
    bluer = own + torch.tensor([[-4.0, -24.0]])
    outputs = {}
    for name, colour in (("own", own), ("bluer", bluer)):
        ab = model.decode(network_output(model, lightness, galaxy_colour=galaxy_colour_input(colour)))
        outputs[name] = flux_weighted_mean(lightness, ab)[0][0]
    moved = outputs["own"] - outputs["bluer"]
    assert float(moved[1]) > 12.0, f"told 24 b* bluer, the output moved {float(moved[1]):.1f}"


def _weights_before_and_after(two_style_model_path, few_galaxies, tmp_path, freeze: str):
    """The two-style test network's weights, and a colour-conditioned network's after one epoch of
    fine-tuning from it with `freeze`."""
    pale = paler_copies(few_galaxies, tmp_path / "pale", chroma=0.25)
    config = TrainConfig(epochs=1, batch_size=4, crop=64, num_threads=1, augment="none", condition_on_survey=True,
                         survey_names=("vivid", "pale"), init_from=str(two_style_model_path), freeze=freeze)
    before = load_model(two_style_model_path, device="cpu")
    model_config = dataclasses.replace(before.config, galaxy_colour_conditioned=True)
    result = train([few_galaxies, pale], tmp_path / "run", model_config, config, progress=False, log=lambda text: None)
    return before.network.state_dict(), load_model(result.last_path, device="cpu").network.state_dict()


def test_a_frozen_encoder_keeps_what_caution_and_the_recogniser_were_fitted_on(two_style_model_path, few_galaxies, tmp_path):
    """Fine-tuning a colour-conditioned decoder on a trained network: the encoder's weights, its batch-norm
    statistics and the survey recogniser stay bit for bit; the decoder learns."""
    start, after = _weights_before_and_after(two_style_model_path, few_galaxies, tmp_path, "encoder")
    kept = [key for key in start if key.startswith(("stem.", "downs.", "conditioning.recogniser."))]
    assert kept and all(torch.equal(start[key], after[key]) for key in kept)
    assert any(not torch.equal(start[key], after[key]) for key in start if key.startswith("ups."))


def test_freezing_the_network_trains_the_colour_film_alone(two_style_model_path, few_galaxies, tmp_path):
    start, after = _weights_before_and_after(two_style_model_path, few_galaxies, tmp_path, "network")
    assert all(torch.equal(start[key], after[key]) for key in start)
    assert any(after[key].abs().max() > 0 for key in after if key.startswith("galaxy_colour_film.films."))  # zero at the start


def test_freezing_needs_a_network_to_start_from():
    with pytest.raises(GalcolorError, match="init_from"):
        TrainConfig(freeze="encoder")


def test_a_fine_tuned_decoder_takes_its_base_models_caution_and_stage(two_style_model_path, tmp_path):
    """carry_over: the base's fitted parts come along with the new network; a network whose encoder moved is refused."""
    from galcolor.models.galaxy_colour import GalaxyColourNet
    from galcolor.training.carry_over import carry_over

    base = load_model(two_style_model_path, device="cpu")
    base = dataclasses.replace(base, galaxy_colour=GalaxyColourNet(2, width=4).eval(), metadata={**base.metadata, "survey_saturation": [1.0, 0.4]})
    config = dataclasses.replace(base.config, galaxy_colour_conditioned=True)
    network = build_model(config)
    network.load_state_dict(base.network.state_dict(), strict=False)
    tuned = dataclasses.replace(base, network=network, config=config, galaxy_colour=None, metadata={})
    carried = carry_over(tuned, base)
    assert carried.network is network and carried.config.galaxy_colour_conditioned
    assert carried.galaxy_colour is base.galaxy_colour and carried.metadata["survey_saturation"] == [1.0, 0.4]
    with torch.no_grad():
        network.downs[0][0].weight.add_(0.01)
    with pytest.raises(GalcolorError, match="encoder"):
        carry_over(tuned, base)
