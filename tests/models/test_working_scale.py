"""Tests for reduced-resolution chroma (ModelConfig.working_scale) and the option grid of UNetColorizer:
every combination trains without NaNs at the input's own size, and a scale-2 network learns real galaxies' colour."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from galcolor.errors import GalcolorError
from galcolor.models import build_model
from galcolor.models.config import ModelConfig

GRID = [ModelConfig(base_width=4, depth=2, working_scale=scale, surveys=surveys, global_pathway=pathway)
        for scale, surveys, pathway in itertools.product((1, 2, 4), ((), ("sdss", "decals")), (False, True))]


def _train_step(model, lightness, target, survey=None):
    ab, logits = model(lightness, survey=survey, with_survey_logits=True)
    loss = (ab - target).abs().mean()
    if logits is not None:
        loss = loss + F.cross_entropy(logits, torch.zeros(len(lightness), dtype=torch.long))
    model.zero_grad(set_to_none=True)
    loss.backward()
    return ab


@pytest.mark.parametrize("config", GRID, ids=lambda c: f"s{c.working_scale}-surveys{len(c.surveys)}-global{int(c.global_pathway)}")
def test_every_option_combination_trains_at_the_input_size(config):
    torch.manual_seed(0)
    model = build_model(config).train()
    multiple = config.size_multiple
    assert multiple == model.size_multiple == 4 * config.working_scale
    height, width = 2 * multiple, 3 * multiple  # non-square catches swapped H and W
    lightness, target = torch.rand(2, 1, height, width), torch.rand(2, 2, height, width) * 0.2 - 0.1
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # FiLM starts at zero: what feeds it only gets a gradient after one step
        ab = _train_step(model, lightness, target)
        optimizer.step()
    assert ab.shape == (2, 2, height, width)
    assert torch.isfinite(ab).all() and ab.abs().max() <= 1.0
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), f"{name}: no finite gradient"
    dead = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert not dead, f"parameters that never learn: {dead}"
    # The plain call (every existing caller, ONNX export, DDP) still returns ab alone.
    assert model(lightness).shape == (2, 2, height, width)


@pytest.mark.parametrize("scale", [2, 4])
def test_any_side_comes_back_at_its_own_size(scale):
    """Inference pads to size_multiple, but a caller that does not still gets ab at the input's size."""
    model = build_model(ModelConfig(base_width=4, depth=2, working_scale=scale)).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 4 * scale + 2, 4 * scale + 3)).shape == (1, 2, 4 * scale + 2, 4 * scale + 3)


def test_the_refiner_puts_full_resolution_lightness_edges_into_the_colour():
    """At scale 4 the U-Net never sees a 1-pixel knot; the full-resolution refiner does."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(base_width=4, depth=2, working_scale=4)).eval()
    lightness = torch.zeros(1, 1, 32, 32)
    knot = lightness.clone()
    knot[..., 13, 13] = 1.0
    with torch.no_grad():
        change = (model(knot) - model(lightness)).abs().sum(dim=1)[0]  # (H, W)
    assert change[12:15, 12:15].sum() > 0
    assert change[12:15, 12:15].max() == change.max()  # strongest at the knot, not smeared over its 4x4 cell


@pytest.mark.parametrize("kwargs", [{"working_scale": 3}, {"working_scale": 0}, {"arch": "seed", "working_scale": 2},
                                    {"arch": "seed", "surveys": ("sdss",)}, {"arch": "seed", "global_pathway": True},
                                    {"surveys": ("sdss", "sdss")}, {"surveys": ("",)}])
def test_bad_new_options_raise_galcolor_error(kwargs):
    with pytest.raises(GalcolorError) as err:
        ModelConfig(**kwargs)
    assert "\n" not in str(err.value)


def _sdss_crops(folder: Path, count: int = 8, crop: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    from galcolor.color.lab import normalise_ab, normalise_lightness, rgb_to_lab

    paths = sorted((folder / "spirals").glob("*.jpg"))[: count // 2] + sorted((folder / "non_spirals").glob("*.jpg"))[: count // 2]
    start = (256 - crop) // 2
    rgb = np.stack([np.asarray(Image.open(p).convert("RGB"))[start : start + crop, start : start + crop] for p in paths])
    lab = rgb_to_lab(torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255)  # (N, 3, crop, crop)
    return normalise_lightness(lab[:, :1]), normalise_ab(lab[:, 1:])


@pytest.mark.slow
def test_reduced_resolution_chroma_overfits_real_galaxies(sdss_dir):
    """8 real SDSS galaxies, 128 px crops, scale 2: the L1 falls 10x from its start and ends well below
    grey's (ab = 0), so the network has learnt their colour, not just to stop guessing."""
    lightness, target = _sdss_crops(sdss_dir)
    torch.manual_seed(0)
    model = build_model(ModelConfig(base_width=8, depth=3, working_scale=2)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = (model(lightness) - target).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    grey = target.abs().mean().item()
    final = float(np.mean(losses[-5:]))
    assert final < losses[0] / 10, f"L1 {losses[0]:.4f} -> {final:.4f}"
    assert final < 0.5 * grey, f"L1 {final:.4f} against grey's {grey:.4f}"


def test_the_error_head_reads_full_resolution_features_at_any_scale():
    """error_head.watched hooks the network's head input: at scale 2 it must still be full resolution,
    L last, so a fitted error head lines up with the predicted ab."""
    from galcolor.models.error_head import watched

    for scale in (1, 2):
        model = build_model(ModelConfig(base_width=4, depth=2, working_scale=scale)).eval()
        lightness = torch.rand(2, 1, 32, 48)
        with watched(model) as (seen, pooled), torch.no_grad():
            model(lightness)
        assert seen["last"].shape == (2, 5, 32, 48)
        torch.testing.assert_close(seen["last"][:, -1:], lightness)
        assert pooled.mean().shape == (2, 16)  # the bottleneck, as caution pools it


def test_every_option_runs_under_bf16_autocast():
    """Training and inference use bf16 autocast where the hardware pays (CUDA, AMX CPUs): the new
    parts must accept its mixed dtypes, here forced on the CPU."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(base_width=4, depth=2, working_scale=2, surveys=("sdss", "decals"), global_pathway=True))
    lightness = torch.rand(2, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ab, logits = model(lightness, with_survey_logits=True)
        named = model(lightness, survey=torch.eye(2))
    assert ab.shape == named.shape == (2, 2, 32, 32) and torch.isfinite(ab).all() and logits.shape == (2, 2)
    (ab.float().abs().mean() + logits.float().logsumexp(dim=1).mean()).backward()
