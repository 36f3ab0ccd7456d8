"""The galaxy-colour stage: it learns real galaxies' mean colour, and travels in a checkpoint."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from galcolor.app.api import load_model
from galcolor.errors import GalcolorError
from galcolor.models.checkpoint import load_checkpoint, save_model
from galcolor.models.galaxy_colour import GalaxyColourNet, flux_weighted_mean, thumbnail
from galcolor.training.data import load_split
from galcolor.training.galaxy_colour_fit import estimates, fit_stage, make_thumbnails


def test_thumbnail_keeps_a_galaxy_centred_and_round_in_any_frame():
    tall = torch.zeros(1, 1, 200, 100)
    tall[..., 90:110, 40:60] = 1.0  # a square galaxy in the middle of a tall frame
    small = thumbnail(tall, 20)
    assert small.shape == (1, 1, 20, 20)
    rows, columns = small[0, 0].sum(1), small[0, 0].sum(0)
    assert torch.allclose(rows, rows.flip(0)) and torch.allclose(columns, columns.flip(0))  # centred
    assert (rows > 0).sum() == (columns > 0).sum()  # as wide as tall: not stretched


def test_flux_weighted_mean_counts_signal_pixels_by_their_lightness():
    lightness = torch.tensor([[[[10.0, 20.0, 60.0]]]])
    ab = torch.tensor([[[[50.0, 2.0, 4.0]], [[0.0, -3.0, 6.0]]]])
    mean, weight = flux_weighted_mean(lightness, ab)
    assert torch.allclose(mean, torch.tensor([[(20 * 2 + 60 * 4) / 80, (20 * -3 + 60 * 6) / 80]]))  # the sky pixel (L 10) is left out
    assert float(weight) == 80.0
    _, none = flux_weighted_mean(torch.zeros(1, 1, 2, 2), torch.ones(1, 2, 2, 2))
    assert float(none) == 0.0


def test_the_stage_overfits_a_handful_of_real_galaxies(tiny_model_path, few_galaxies):
    model = load_model(tiny_model_path, device="cpu")
    thumbnails = make_thumbnails(model, load_split(few_galaxies, "all", progress=False), progress=False)
    assert len(thumbnails) == 12 and thumbnails.targets[:, 1].std() > 1.0  # real galaxies of different colours

    def loss(stage: GalaxyColourNet) -> float:
        return float(F.smooth_l1_loss(estimates(stage, thumbnails), thumbnails.targets))

    untrained = GalaxyColourNet(1).eval()
    untrained.centre.copy_(thumbnails.targets.mean(0, keepdim=True))  # already the best constant guess
    trained = fit_stage(thumbnails, surveys=1, steps=800, batch_size=12, lr=3e-3, progress=False)
    assert loss(trained) * 10 <= loss(untrained), (loss(trained), loss(untrained))


def test_a_stage_survives_a_checkpoint_and_a_damaged_one_is_one_line(tiny_model_path, tmp_path):
    model = load_model(tiny_model_path, device="cpu")
    stage = GalaxyColourNet(1, width=8).eval()
    with torch.no_grad():
        stage.centre.fill_(3.0)
    save_model(dataclasses.replace(model, galaxy_colour=stage), tmp_path / "with-stage.safetensors")
    loaded = load_checkpoint(tmp_path / "with-stage.safetensors")
    probe = torch.rand(2, 1, 64, 64)
    assert torch.equal(loaded.galaxy_colour(probe), stage(probe))

    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    tensors = load_file(tmp_path / "with-stage.safetensors")
    with safe_open(str(tmp_path / "with-stage.safetensors"), framework="pt") as handle:
        header = handle.metadata()
    del tensors["galaxy_colour.head.2.weight"]
    save_file(tensors, tmp_path / "damaged.safetensors", metadata=header)
    with pytest.raises(GalcolorError, match="galaxy-colour stage is damaged") as caught:
        load_checkpoint(tmp_path / "damaged.safetensors")
    assert "\n" not in str(caught.value)
