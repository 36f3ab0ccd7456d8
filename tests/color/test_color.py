"""Tests for galcolor.color: sRGB <-> CIELAB must agree with scikit-image and be invertible."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.color import lab2rgb, lab2xyz, rgb2lab

from galcolor.color.lab import AB_SCALE, L_MAX, denormalise_ab, lab_array_to_rgb8, lab_to_rgb, luminance_of_lightness, normalise_ab, normalise_lightness, rgb_array_to_lab, rgb_to_lab

EDGE_COLOURS = np.array(
    [
        [0.0, 0.0, 0.0],  # black
        [1.0, 1.0, 1.0],  # white
        [1.0, 0.0, 0.0],  # primaries
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [1.0, 1.0, 0.0],  # secondaries
        [0.0, 1.0, 1.0],
        [1.0, 0.0, 1.0],
        [0.5, 0.5, 0.5],  # mid grey
        [1e-3, 1e-3, 1e-3],  # near black: the linear segment of the sRGB curve
        [0.02, 0.0, 0.01],  # faint coloured sky
        [0.04045, 0.04045, 0.04045],  # the sRGB curve's knee
        [1.0, 0.9, 0.0],
    ]
)


def to_tensor(hw3: np.ndarray) -> torch.Tensor:
    """(H, W, 3) -> (1, 3, H, W) float64 tensor."""
    return torch.from_numpy(np.ascontiguousarray(hw3, dtype=np.float64)).permute(2, 0, 1)[None]


def to_array(tensor: torch.Tensor) -> np.ndarray:
    return tensor[0].permute(1, 2, 0).detach().numpy()


def random_colours(seed: int = 0, n: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).random((n, n, 3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rgb_to_lab_matches_skimage_on_random_and_edge_colours(dtype):
    for rgb in (random_colours(), EDGE_COLOURS[None]):
        ours = to_array(rgb_to_lab(to_tensor(rgb).to(dtype)).double())
        reference = rgb2lab(rgb)  # D65, 2-degree observer: the standard sRGB CIELAB
        assert np.abs(ours - reference).max() < 1e-3


def test_edge_colours_have_their_textbook_lab():
    lab = to_array(rgb_to_lab(to_tensor(EDGE_COLOURS[None])))
    np.testing.assert_allclose(lab[0, 0], [0.0, 0.0, 0.0], atol=1e-3)  # black
    np.testing.assert_allclose(lab[0, 1], [100.0, 0.0, 0.0], atol=0.01)  # white
    np.testing.assert_allclose(lab[0, 2], [53.24, 80.09, 67.20], atol=0.02)  # sRGB red
    np.testing.assert_allclose(lab[0, 4], [32.30, 79.19, -107.86], atol=0.02)  # sRGB blue
    # Greys carry no chroma at any lightness (the sRGB matrix's rounding leaves < 0.01).
    assert np.abs(lab[0, [0, 1, 8, 9, 11], 1:]).max() < 0.01


def test_luminance_of_lightness_is_cie_y_on_both_sides_of_the_knee():
    lightness = np.linspace(0.0, 100.0, 401)
    grey_lab = np.stack([lightness, np.zeros_like(lightness), np.zeros_like(lightness)], axis=-1)
    expected_y = lab2xyz(grey_lab)[:, 1]
    got = luminance_of_lightness(torch.from_numpy(lightness).float()).numpy()
    np.testing.assert_allclose(got, expected_y, atol=2e-6)


def test_lab_to_rgb_matches_skimage():
    lab = rgb2lab(random_colours(seed=1))
    np.testing.assert_allclose(to_array(lab_to_rgb(to_tensor(lab))), lab2rgb(lab), atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip_rgb_lab_rgb_for_random_and_edge_colours(dtype):
    for rgb in (random_colours(seed=2), EDGE_COLOURS[None]):
        tensor = to_tensor(rgb).to(dtype)
        back = lab_to_rgb(rgb_to_lab(tensor))
        assert back.dtype == dtype
        assert (back - tensor).abs().max().item() < 1e-3


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(*[st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False)] * 3),
        min_size=1,
        max_size=16,
    )
)
def test_round_trip_property_on_any_srgb_triples(triples):
    rgb = torch.tensor(triples, dtype=torch.float32).T.reshape(1, 3, 1, len(triples))
    lab = rgb_to_lab(rgb)
    assert torch.isfinite(lab).all()
    assert lab[:, 0].min() >= -1e-3 and lab[:, 0].max() <= L_MAX + 1e-3
    assert (lab_to_rgb(lab) - rgb).abs().max().item() < 1e-3


def test_out_of_range_rgb_is_clamped_and_out_of_gamut_lab_is_clipped():
    rgb = torch.tensor([-0.5, 1.5, 0.5]).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(
        rgb_to_lab(rgb).numpy(), rgb_to_lab(torch.tensor([0.0, 1.0, 0.5]).reshape(1, 3, 1, 1)).numpy()
    )
    # Saturated chroma far outside sRGB still gives displayable pixels.
    lab = torch.tensor([[50.0, 50.0, 100.0], [50.0, 0.0, -110.0], [100.0, 100.0, 100.0]]).T.reshape(1, 3, 1, 3)
    rgb_back = lab_to_rgb(lab)
    assert torch.isfinite(rgb_back).all()
    assert rgb_back.min() >= 0.0 and rgb_back.max() <= 1.0


def test_batched_shapes_and_per_image_independence():
    batch = torch.rand(3, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    lab = rgb_to_lab(batch)
    assert lab.shape == (3, 3, 5, 7)
    assert lab_to_rgb(lab).shape == (3, 3, 5, 7)
    # Each image converts as if alone, pixels stay where they were.
    for i in range(3):
        torch.testing.assert_close(lab[i : i + 1], rgb_to_lab(batch[i : i + 1]), atol=1e-4, rtol=0)
    np.testing.assert_allclose(
        to_array(lab[1:2]), rgb2lab(to_array(batch[1:2]).astype(np.float64)), atol=1e-3
    )


def test_conversions_are_differentiable_with_finite_gradients():
    # Include black, white and near-black pixels, where cube roots and the sRGB knee live.
    rgb = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    rgb[0, :, 0, 0] = 0.0
    rgb[0, :, 0, 1] = 1.0
    rgb[0, :, 0, 2] = 1e-4
    rgb.requires_grad_(True)
    lab = rgb_to_lab(rgb)
    (lab[:, 1:] ** 2).mean().backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all()
    assert rgb.grad.abs().sum() > 0

    ab = torch.zeros(2, 2, 6, 6, requires_grad=True)
    lightness = torch.full((2, 1, 6, 6), 60.0)
    target = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    loss = (lab_to_rgb(torch.cat([lightness, ab], dim=1)) - target).abs().mean()
    loss.backward()
    assert ab.grad is not None and torch.isfinite(ab.grad).all()
    assert ab.grad.abs().sum() > 0  # a colour loss in RGB reaches the predicted ab


def test_numpy_helpers_agree_with_the_torch_path():
    rgb = np.concatenate([random_colours(seed=3, n=13)[:1], EDGE_COLOURS[None]], axis=1)
    lab = rgb_array_to_lab(rgb)
    assert lab.shape == rgb.shape and lab.dtype == np.float32
    np.testing.assert_allclose(lab, to_array(rgb_to_lab(to_tensor(rgb).float())), atol=1e-5)

    rgb8 = lab_array_to_rgb8(lab)
    assert rgb8.shape == rgb.shape and rgb8.dtype == np.uint8
    expected = np.round(to_array(lab_to_rgb(to_tensor(lab).float())) * 255.0)
    assert np.abs(rgb8.astype(int) - expected.astype(int)).max() <= 1
    # 8-bit pixels survive rgb8 -> Lab -> rgb8 exactly: what inference does to the user's L.
    pixels = np.random.default_rng(4).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(lab_array_to_rgb8(rgb_array_to_lab(pixels / 255.0)), pixels)


def test_numpy_helpers_accept_non_contiguous_input():
    rgb = random_colours(seed=5, n=8)[:, ::-1]  # a flipped view, as np.fliplr gives
    np.testing.assert_allclose(rgb_array_to_lab(rgb), rgb2lab(np.ascontiguousarray(rgb)), atol=1e-3)


def test_normalisation_is_inverse_and_uses_the_documented_ranges():
    ab = torch.linspace(-AB_SCALE, AB_SCALE, 23).reshape(1, 1, 23).repeat(1, 2, 1)
    torch.testing.assert_close(denormalise_ab(normalise_ab(ab)), ab)
    assert normalise_ab(ab).abs().max().item() == pytest.approx(1.0)  # the tanh head's range
    x = torch.rand(2, 2, 3, 3) * 2 - 1
    torch.testing.assert_close(normalise_ab(denormalise_ab(x)), x)
    assert normalise_lightness(torch.tensor([0.0, 50.0, 100.0])).tolist() == [0.0, 0.5, 1.0]


def test_out_of_gamut_chroma_is_reduced_keeping_lightness_and_hue():
    from galcolor.color.lab import fit_chroma_to_gamut, lab_to_rgb, rgb_to_lab

    lab = torch.tensor([[60.0, 90.0, -100.0], [20.0, -80.0, 70.0], [50.0, 5.0, 5.0]]).T.reshape(1, 3, 3, 1)
    fitted = fit_chroma_to_gamut(lab)
    back = rgb_to_lab(lab_to_rgb(fitted))
    assert torch.allclose(back[:, 0], lab[:, 0], atol=0.2)  # L kept
    hue_in = torch.atan2(lab[:, 2], lab[:, 1])
    hue_out = torch.atan2(fitted[:, 2], fitted[:, 1])
    assert torch.allclose(hue_in, hue_out, atol=1e-4)  # hue kept
    assert torch.equal(fitted[..., 2, :], lab[..., 2, :])  # an in-gamut colour is untouched
    assert (fitted[:, 1:].abs() < lab[:, 1:].abs() + 1e-6).all()


def bisection_on_every_pixel(lab: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """fit_chroma_to_gamut as it was before it skipped in-gamut pixels and the sRGB curve: the full
    kornia conversion of every pixel at every step."""
    from kornia.color import lab_to_rgb as unclipped

    lightness, ab = lab[:, :1], lab[:, 1:]

    def fits(scale):
        rgb = unclipped(torch.cat([lightness, ab * scale], dim=1), clip=False)
        return ((rgb >= -1e-4) & (rgb <= 1 + 1e-4)).all(dim=1, keepdim=True)

    low, high = torch.zeros_like(lightness), torch.ones_like(lightness)
    inside = fits(high)
    for _ in range(steps):
        middle = (low + high) / 2
        ok = fits(middle)
        low, high = torch.where(ok, middle, low), torch.where(ok, high, middle)
    return torch.cat([lightness, ab * torch.where(inside, torch.ones_like(low), low)], dim=1)


def test_gamut_fitting_matches_the_full_bisection_on_random_colours():
    from galcolor.color.lab import fit_chroma_to_gamut

    generator = torch.Generator().manual_seed(0)
    lab = torch.cat([torch.rand(2, 1, 64, 64, generator=generator) * 100, (torch.rand(2, 2, 64, 64, generator=generator) - 0.5) * 240], dim=1)
    fitted, expected = fit_chroma_to_gamut(lab), bisection_on_every_pixel(lab)
    assert torch.equal(fitted[:, :1], lab[:, :1])
    difference = (fitted - expected).abs()
    assert difference.max() <= 0.5  # a step decided the other way where float rounding straddles the edge
    assert (difference > 1e-3).float().mean() < 1e-3
    assert (fit_chroma_to_gamut(lab.double()).float() - fitted).abs().max() <= 0.5  # float64 input works alike


def test_gamut_fitting_matches_the_full_bisection_on_real_coloured_galaxies(sdss_dir, tiny_model_path):
    """Real SDSS galaxies coloured by a trained model, at its own saturation and doubled (more
    pixels out of gamut): within 0.5 ab and 1 ΔE of the full bisection, and lab_array_to_rgb8 within one level."""
    from galcolor.inference.arrays import colorize_lab
    from galcolor.app.api import load_model
    from galcolor.color.lab import fit_chroma_to_gamut
    from galcolor.io.decode import read_image

    model = load_model(tiny_model_path)
    paths = sorted((sdss_dir / "spirals").glob("*.jpg"))[:3] + sorted((sdss_dir / "non_spirals").glob("*.jpg"))[:3]
    outside = 0
    for path in paths:
        predicted, _ = colorize_lab(read_image(path).rgb, model)
        for saturation in (1.0, 2.0):
            lab = torch.from_numpy(predicted).permute(2, 0, 1)[None].clone()
            lab[:, 1:] *= saturation
            fitted, expected = fit_chroma_to_gamut(lab), bisection_on_every_pixel(lab)
            outside += int((expected != lab).any(dim=1).sum())
            assert (fitted - expected)[:, 1:].abs().max() <= 0.5, path
            assert (fitted - expected).pow(2).sum(dim=1).sqrt().max() <= 1.0, path
            rgb8 = lab_array_to_rgb8(lab[0].permute(1, 2, 0).numpy())
            reference = np.round(lab_to_rgb(expected)[0].permute(1, 2, 0).numpy() * 255.0)
            assert np.abs(rgb8.astype(int) - reference.astype(int)).max() <= 1, path
    assert outside > 0, "some pixels needed fitting, or the comparison proves nothing"
