"""Stretch invariance: the same galaxy, however it was stretched, reaches the network the same way."""

import numpy as np
import pytest
import torch

from galcolor.app.api import load_model
from galcolor.inference.predict import network_lightness, predict_ab
from galcolor.color.lightness import TABLE_BINS, apply_table, canonical_lightness, histogram, mapping_table, reference_from, table_from_histogram


def galaxy_flux(seed: int = 0, noise: float = 0.004) -> np.ndarray:
    """Linear flux of an inclined exponential disk with a star-forming knot, on a noisy sky at 0."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:96, :96]
    radius = np.hypot(x - 48, (y - 48) / 0.6)
    flux = np.exp(-radius / 10) + 0.05 * np.exp(-((x - 30) ** 2 + (y - 55) ** 2) / 8)
    return flux + rng.normal(0.0, noise, flux.shape)


def stretches(flux: np.ndarray) -> dict[str, torch.Tensor]:
    """L in [0, 100] of one flux image under three renderings a user might hand us."""
    unit = np.clip(flux / flux.max(), 0.0, 1.0)
    rendered = {
        "linear": unit * 100.0,
        "gamma": unit**0.5 * 100.0,
        "asinh": np.arcsinh(np.clip(flux, 0, None) / 0.02) / np.arcsinh(flux.max() / 0.02) * 100.0,
    }
    return {name: torch.from_numpy(values).float()[None, None] for name, values in rendered.items()}


@pytest.fixture(scope="module")
def reference() -> torch.Tensor:
    rng = np.random.default_rng(1)
    return reference_from(torch.from_numpy(rng.gamma(1.0, 8.0, (64, 64)).clip(0, 100)).float() for _ in range(4))


def test_three_stretches_of_one_galaxy_give_the_same_canonical_lightness(reference):
    rendered = stretches(galaxy_flux())
    raw_spread = (rendered["gamma"] - rendered["linear"]).abs().mean()
    canonical = {name: canonical_lightness(lightness, reference) for name, lightness in rendered.items()}
    for name in ("gamma", "asinh"):
        difference = (canonical[name] - canonical["linear"]).abs()
        assert difference.mean() < 0.1 and torch.quantile(difference.flatten(), 0.99) < 1.0
    assert raw_spread > 5.0  # the stretches really were different


def test_a_canonical_model_colours_three_stretches_alike(tiny_model_path):
    model = load_model(tiny_model_path)
    assert model.config.input_lightness == "canonical"
    ab = {name: predict_ab(model.with_style(0.0, 1.0), lightness) for name, lightness in stretches(galaxy_flux()).items()}
    for name in ("gamma", "asinh"):
        difference = (ab[name] - ab["linear"]).abs()
        assert torch.quantile(difference.flatten(), 0.99) < 1.0  # ab units: invisible


def test_mapping_is_monotonic_and_stays_within_the_reference(reference):
    lightness = torch.from_numpy(galaxy_flux(3)).float().clamp(0, 1)[None] * 100
    table = mapping_table(lightness, reference)
    assert table.shape == (TABLE_BINS,)
    assert (table[1:] >= table[:-1] - 1e-5).all()
    assert table.min() >= reference.min() - 1e-5 and table.max() <= reference.max() + 1e-5


def test_a_table_from_band_histograms_equals_the_whole_image_table(reference):
    """A streamed image adds up its bands' histograms; its mapping must equal the whole image's."""
    lightness = torch.from_numpy(galaxy_flux(4)).float().clamp(0, 1) * 100
    summed = sum(histogram(band) for band in lightness.split(20, dim=0))
    assert torch.equal(table_from_histogram(summed, reference), mapping_table(lightness, reference))


def test_a_flat_image_maps_to_the_middle_of_the_scale(reference):
    flat = torch.full((1, 1, 16, 16), 42.0)
    assert torch.allclose(canonical_lightness(flat, reference), torch.full_like(flat, float(reference[len(reference) // 2])), atol=1.0)


def test_raw_models_see_the_users_lightness(tiny_model_path):
    import dataclasses

    model = load_model(tiny_model_path)
    raw = dataclasses.replace(model, config=dataclasses.replace(model.config, input_lightness="raw"))
    lightness = stretches(galaxy_flux())["gamma"]
    assert torch.equal(network_lightness(raw, lightness), lightness)
    assert not torch.equal(network_lightness(model, lightness), lightness)
    assert torch.equal(network_lightness(model, lightness)[0, 0], apply_table(lightness[0, 0], mapping_table(lightness[0, 0], model.lightness_reference)))
