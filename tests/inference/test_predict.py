"""Inference at full resolution: padding to the network's multiple, and tiling without seams."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from galcolor.app.api import load_model
from galcolor.models.checkpoint import LoadedModel
from galcolor.color.lab import AB_SCALE, rgb_to_lab
from conftest import galaxy_field
from galcolor.inference.predict import _ramp, _tile_starts, colorize_tensor, network_lightness, network_output, predict_ab, predict_ab_tiled

TILE, OVERLAP = 128, 32


@pytest.fixture(scope="module")
def model(tiny_model_path) -> LoadedModel:
    return load_model(tiny_model_path, device="cpu")


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 1, 37, 53), (2, 1, 5, 7), (3, 1, 64, 64), (1, 1, 130, 3)])
def test_predict_ab_pads_and_returns_exactly_the_input_size(model, shape):
    lightness = torch.rand(shape) * 100.0
    ab = predict_ab(model, lightness)
    assert tuple(ab.shape) == (shape[0], 2, shape[2], shape[3])
    assert ab.dtype == torch.float32 and torch.isfinite(ab).all()
    assert ab.abs().max() <= AB_SCALE + 1e-3


def test_padding_is_black_sky_at_the_bottom_and_right(model):
    """An odd-sized image is seen by the network as the top-left of itself padded with L = 0."""
    lightness = network_lightness(model, galaxy_field(37, 53))
    padded = torch.zeros((1, 1, 40, 56))  # multiples of 2**depth = 4
    padded[..., :37, :53] = lightness
    alone = network_output(model, lightness, prepared=True)
    assert torch.allclose(alone, network_output(model, padded, prepared=True)[..., :37, :53], atol=1e-3)


def test_a_batch_equals_its_images_one_by_one(model):
    batch = torch.cat([galaxy_field(48, 64, seed) for seed in range(3)])
    together = predict_ab(model, batch)
    for index in range(3):
        assert torch.allclose(together[index : index + 1], predict_ab(model, batch[index : index + 1]), atol=1e-3)


def test_colorize_tensor_keeps_the_input_lightness_exactly(model):
    rgb = torch.rand(2, 3, 37, 53)
    predicted, input_lab = colorize_tensor(model, rgb)
    assert predicted.shape == input_lab.shape == (2, 3, 37, 53)
    assert torch.equal(predicted[:, :1], rgb_to_lab(rgb)[:, :1])
    assert torch.equal(predicted[:, :1], input_lab[:, :1])


def test_tiled_equals_untiled_when_the_image_fits_one_tile(model):
    lightness = galaxy_field(100, 120)
    assert torch.equal(predict_ab_tiled(model, lightness, tile=TILE, overlap=OVERLAP), predict_ab(model, lightness).cpu())


def test_tile_starts_cover_every_pixel_with_the_overlap():
    for length in (129, 200, 300, 1000, 1025):
        starts = _tile_starts(length, TILE, TILE - OVERLAP)
        assert starts[0] == 0 and starts[-1] == length - TILE
        assert all(b - a <= TILE - OVERLAP for a, b in zip(starts, starts[1:])), "neighbours overlap by >= overlap"
        assert starts == sorted(set(starts))
    assert _tile_starts(100, TILE, TILE - OVERLAP) == [0]


def test_ramps_rise_only_at_shared_edges():
    ramp = _ramp(TILE, OVERLAP, fade_in=True, fade_out=True)
    assert ramp.shape == (TILE,) and (ramp > 0).all() and (ramp <= 1).all()
    assert torch.equal(ramp[OVERLAP:-OVERLAP], torch.ones(TILE - 2 * OVERLAP))
    assert (ramp[:OVERLAP].diff() > 0).all() and (ramp[-OVERLAP:].diff() < 0).all()
    assert torch.equal(_ramp(TILE, OVERLAP, fade_in=False, fade_out=False), torch.ones(TILE))


def test_tiled_agrees_with_untiled_and_shows_no_seams(model):
    """Tiles of 128 with 32 px overlap on a 260 x 300 field (3 x 3 tiles), against one untiled pass.

    In eval mode batch norm is a fixed per-channel affine map, so a tile sees the same function as
    the whole image; they differ only where a tile's own zero padding (at a border inside the image)
    reaches into its receptive field. The linear ramps give those pixels little weight, so the
    difference stays far below one ab unit on average and below one unit at worst (the tiny U-Net's
    receptive field, ~45 px, is comparable to the overlap; measured: mean ~0.001, max ~0.4).
    Seams would show as a jump in ab across a tile border, so the horizontal and vertical ab
    gradients on border rows/columns must look like those elsewhere.
    """
    height, width = 260, 300
    lightness = galaxy_field(height, width)
    full = predict_ab(model, lightness).cpu()
    tiled = predict_ab_tiled(model, lightness, tile=TILE, overlap=OVERLAP)
    assert tiled.shape == full.shape == (1, 2, height, width)
    assert torch.isfinite(tiled).all()

    difference = (tiled - full).abs()
    assert difference.mean() < 0.05, float(difference.mean())
    assert difference.max() < 1.0, float(difference.max())

    for axis, length in ((3, width), (2, height)):
        starts = _tile_starts(length, TILE, TILE - OVERLAP)
        assert len(starts) == 3
        borders = sorted({s for s in starts[1:]} | {s + TILE for s in starts[:-1]})  # where a tile begins or ends
        # |ab(i) - ab(i-1)| for every i, averaged over the other axis and the two channels.
        gradient = tiled.diff(dim=axis).abs().mean(dim=(0, 1, 2 if axis == 3 else 3))
        reference = full.diff(dim=axis).abs().mean(dim=(0, 1, 2 if axis == 3 else 3))
        at_borders = gradient[[b - 1 for b in borders]]
        elsewhere = np.delete(gradient.numpy(), [b - 1 for b in borders])
        assert at_borders.max() <= 2.0 * elsewhere.max(), (at_borders, elsewhere.max())
        assert at_borders.mean() <= 1.5 * elsewhere.mean(), (at_borders, elsewhere.mean())
        # And no larger than the untiled prediction's own gradient there, give or take a little.
        assert (at_borders - reference[[b - 1 for b in borders]]).abs().max() < 0.1


@settings(max_examples=12, deadline=None)
@given(height=st.integers(1, 150), width=st.integers(1, 150))
def test_tiling_gives_the_untiled_result_for_any_size(model, height, width):
    """Property: for random sizes, tiled and whole-image colour agree within 1 ab unit."""
    torch.manual_seed(height * 1000 + width)
    lightness = torch.rand(1, 1, height, width) * 80
    whole = predict_ab(model, lightness).cpu()
    tiled = predict_ab_tiled(model, lightness, tile=48, overlap=16)
    assert tiled.shape == (1, 2, height, width)
    assert (tiled - whole).abs().mean() < 1.0


def whole_image_accumulator(model: LoadedModel, lightness: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """predict_ab_tiled as it was before it streamed: every tile summed into whole-image float32
    totals and weights, divided at the end."""
    from galcolor.inference.predict import colour_factor, network_lightness, network_output, watching

    _, _, height, width = lightness.shape
    lightness = network_lightness(model, lightness)
    step = tile - overlap
    total, weight_sum = torch.zeros((1, 2, height, width)), torch.zeros((1, 1, height, width))
    with watching(model) as features:
        for top in _tile_starts(height, tile, step):
            for left in _tile_starts(width, tile, step):
                bottom, right = min(top + tile, height), min(left + tile, width)
                ab = model.decode(network_output(model, lightness[:, :, top:bottom, left:right], prepared=True)).cpu()
                weight = _ramp(bottom - top, overlap, top > 0, bottom < height)[:, None] * _ramp(right - left, overlap, left > 0, right < width)[None, :]
                total[:, :, top:bottom, left:right] += ab * weight
                weight_sum[:, :, top:bottom, left:right] += weight
    return total / weight_sum * colour_factor(model, features)


def canonical_and_cautious(model: LoadedModel, lightness: torch.Tensor) -> LoadedModel:
    """The tiny model made to map L to a canonical scale and to fade colour by caution, with the
    caution's limits set so that `lightness` gets about half its colour: both whole-image verdicts
    that a streamed image must reproduce from its bands and tiles."""
    import dataclasses

    from galcolor.models.caution import Caution, pooled_features

    reference = torch.sort(galaxy_field(64, 64, seed=9).flatten()).values[torch.linspace(0, 64 * 64 - 1, 256).long()]
    canonical = dataclasses.replace(model, config=dataclasses.replace(model.config, input_lightness="canonical"),
                                    lightness_reference=reference, caution=None)
    with pooled_features(canonical.network) as features:
        predict_ab(canonical, lightness)
    pooled = features.mean()[0]
    offset = torch.linspace(-1.0, 1.0, len(pooled)) * pooled.abs().mean().clamp(min=0.1)
    distance = float(offset.pow(2).mean().sqrt())
    caution = Caution(pooled + offset, torch.eye(len(pooled)), torch.tensor([0.5 * distance, 1.5 * distance]))
    return dataclasses.replace(canonical, caution=caution, caution_strength=1.0, saturation=0.9)


@pytest.mark.parametrize("variant", ["plain", "canonical_cautious"])
def test_tiles_accumulated_row_by_row_equal_a_whole_image_accumulator(model, variant):
    lightness = galaxy_field(300, 260, seed=3)
    chosen = model if variant == "plain" else canonical_and_cautious(model, lightness)
    assert torch.equal(predict_ab_tiled(chosen, lightness, tile=TILE, overlap=OVERLAP),
                       whole_image_accumulator(chosen, lightness, TILE, OVERLAP))


@pytest.mark.parametrize("variant", ["plain", "canonical_cautious"])
def test_streamed_bands_give_the_tiled_colour_and_keep_the_input_lightness(model, variant):
    """An image above the tile size read band by band (as large files are) gets the in-memory
    tiled path's colour, within the float16 that holds ab while caution waits for the last tile;
    and its tiled colour agrees with the whole image's within 1 ab. (Band by band, sRGB -> Lab
    may round a few pixels' L one float32 step differently: vectorised pow treats a row's last
    few elements apart, and where a row ends depends on the band.)"""
    from galcolor.inference.bands import lab_bands

    height, width = 300, 260
    grey = galaxy_field(height, width, seed=4)[0, 0].numpy() / 100.0
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32) ** 1.3  # any sRGB: only its L is used
    lightness = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])[:, :1]
    chosen = model if variant == "plain" else canonical_and_cautious(model, lightness)

    bands = list(lab_bands(chosen, lambda top, bottom: rgb[top:bottom], height, width, tile=TILE, overlap=OVERLAP, band=40))
    assert [top for top, _ in bands] == sorted({top for top, _ in bands}) and bands[0][0] == 0
    streamed = torch.cat([lab for _, lab in bands], dim=2)
    assert streamed.shape == (1, 3, height, width)
    assert (streamed[:, :1] - lightness).abs().max() <= 1e-4  # the user's L

    tiled = predict_ab_tiled(chosen, lightness, tile=TILE, overlap=OVERLAP)
    assert (streamed[:, 1:] - tiled).abs().max() <= 0.05
    if variant != "plain":
        import dataclasses

        unfaded = predict_ab_tiled(dataclasses.replace(chosen, caution=None, saturation=1.0), lightness, tile=TILE, overlap=OVERLAP)
        factor = float(tiled.abs().sum() / unfaded.abs().sum())
        assert 0.1 < factor < 0.8, f"caution faded the colour partly ({factor}), so a wrong verdict would show"
    whole = predict_ab(chosen, lightness).cpu()
    assert (tiled - whole).abs().max() < 1.0
    assert (streamed[:, 1:] - whole).abs().max() < 1.0
