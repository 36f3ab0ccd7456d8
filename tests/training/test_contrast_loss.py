"""The layout loss (train --contrast-weight): it rewards a colour laid out like the truth's inside the
galaxy, not the median colour around its mean, and a network trained with it puts a blue clump and a
red bulge where they are."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from galcolor.app.api import load_model
from galcolor.color.lab import lab_array_to_rgb8, normalise_ab, rgb_array_to_lab
from galcolor.errors import GalcolorError
from galcolor.inference.predict import predict_ab
from galcolor.models.config import ModelConfig
from galcolor.training.config import TrainConfig
from galcolor.training.losses import contrast_loss, layout_maps, regression_loss
from galcolor.training.trainer import train

SIZE = 64


def galaxy(clump: tuple[int, int], bulge_b: float = 20.0, disk_b: float = -4.0, clump_b: float = -30.0) -> np.ndarray:
    """(SIZE, SIZE, 3) Lab of a face-on disk galaxy: an exponential disk of b* disk_b, a bright bulge at
    the centre of b* bulge_b, and a compact bright knot at `clump` of b* clump_b."""
    y, x = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    r = np.hypot(y - SIZE / 2, x - SIZE / 2)
    bulge = np.exp(-((r / 3.5) ** 2))
    knot = np.exp(-(((y - clump[0]) ** 2 + (x - clump[1]) ** 2) / 3.0 ** 2))
    lightness = 70 * np.exp(-r / 14) + 25 * bulge + 30 * knot
    b = np.where(bulge > 0.3, bulge_b, np.where(knot > 0.3, clump_b, disk_b))
    a = np.where(bulge > 0.3, 6.0, 0.0)
    return np.stack([np.clip(lightness, 0, 100), a * (lightness > 15), b * (lightness > 15)], axis=-1)


def tensors(lab: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    lab_t = torch.from_numpy(lab).float().permute(2, 0, 1)[None]
    return lab_t[:, :1], normalise_ab(lab_t[:, 1:])


def test_the_contrast_loss_is_zero_for_the_truth_and_larger_for_a_flat_colour_of_the_same_mean():
    lightness, truth = tensors(galaxy((20, 40)))
    flat = (truth * lightness).sum(dim=(2, 3), keepdim=True) / lightness.sum() * torch.ones_like(truth)
    damped = flat + 0.5 * (truth - flat)
    assert contrast_loss(truth, truth, lightness, 0.25).item() == pytest.approx(0.0, abs=1e-6)
    assert contrast_loss(flat, truth, lightness, 0.25) > contrast_loss(damped, truth, lightness, 0.25) > 1e-3
    # The mean is not what it judges: the same layout shifted by any colour costs nothing.
    assert contrast_loss(truth + 0.2, truth, lightness, 0.25).item() == pytest.approx(0.0, abs=1e-5)
    # Beside the L1 on the colour, it makes the flat colour cost more than the L1 alone does.
    lab = torch.cat([lightness, truth * 110], dim=1)  # AB_SCALE: back to ab units
    assert regression_loss(flat, lab, "l1", 0.25, contrast_weight=1.0) > regression_loss(flat, lab, "l1", 0.25)


def test_layout_maps_see_the_clump_bluer_than_around_it_and_the_bulge_redder_than_the_mean():
    lab = galaxy((20, 40))
    lightness, truth = tensors(lab)
    deviation, local = layout_maps(truth, lightness)
    assert local[0, 1, 20, 40] < -0.05  # b* of the clump: well below the galaxy around it
    assert deviation[0, 1, SIZE // 2, SIZE // 2] > 0.05  # b* of the bulge: above the galaxy's mean


def test_rebalancing_makes_a_rare_strong_deviation_count_more():
    """A prediction that misses only the small clump costs more with rebalancing (mix 0) than without (mix 1)."""
    lightness, truth = tensors(galaxy((20, 40)))
    _, missed = tensors(galaxy((20, 40), clump_b=-4.0))
    assert contrast_loss(missed, truth, lightness, 0.25, rebalance_mix=0.0) > contrast_loss(missed, truth, lightness, 0.25, rebalance_mix=1.0)


def test_a_contrast_loss_is_refused_for_a_classification_head_and_a_negative_weight(tmp_path):
    with pytest.raises(GalcolorError):
        TrainConfig(contrast_weight=-1.0)
    with pytest.raises(GalcolorError, match="regress head"):
        train(tmp_path, tmp_path / "run", ModelConfig(arch="unet", base_width=4, depth=2, head="classify"),
              TrainConfig(contrast_weight=1.0), progress=False, log=lambda text: None)


def test_a_network_trained_briefly_with_it_puts_the_blue_clump_and_the_red_bulge_where_they_are(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "synthetic"
    folder.mkdir()
    for i in range(48):
        clump = tuple(int(v) for v in SIZE / 2 + rng.choice([-1, 1], 2) * rng.integers(8, 12, 2))
        Image.fromarray(lab_array_to_rgb8(galaxy(clump))).save(folder / f"g{i:02d}.png")
    config = TrainConfig(epochs=30, batch_size=4, crop=SIZE, crop_jitter=0.0, lr=5e-3, augment="none", contrast_weight=1.0, num_threads=1)
    result = train(folder, tmp_path / "run", ModelConfig(arch="unet", base_width=8, depth=2, working_scale=1), config,
                   progress=False, log=lambda text: None)
    model = load_model(result.last_path)
    at = (SIZE // 2 - 10, SIZE // 2 + 9)  # an unseen galaxy's clump, where none of the training galaxies had one
    unseen = rgb_array_to_lab(lab_array_to_rgb8(galaxy(at)) / 255.0)
    b = predict_ab(model, torch.from_numpy(unseen[..., 0]).float()[None, None])[0, 1].numpy()
    y, x = np.mgrid[:SIZE, :SIZE]
    from_centre, from_clump = np.hypot(y - SIZE / 2, x - SIZE / 2), np.hypot(y - at[0], x - at[1])
    disk = (from_centre > 6) & (from_centre < 18) & (from_clump > 5)
    clump, around = b[from_clump < 2].mean(), b[disk & (from_clump < 9)].mean()
    bulge = b[from_centre < 2.5].mean()
    assert clump < around - 3.0, f"clump b* {clump:.1f}, the disk around it {around:.1f}"
    assert bulge > b[disk].mean() + 3.0, f"bulge b* {bulge:.1f}, disk {b[disk].mean():.1f}"
