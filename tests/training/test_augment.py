"""Instrument-imitating augmentation: the network's input changes, the colour stays where the light is."""

import dataclasses

import pytest
import torch

from galcolor.training.augment import InstrumentAugmentation, InstrumentDraw, imitate, optical, photometric


def coloured_pattern() -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 64, 64) L of a bright off-centre blob and a bar, and ab proportional to L: colour sits exactly on the light."""
    y, x = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    lightness = 80 * torch.exp(-((x - 20) ** 2 + (y - 40) ** 2) / 30) + 60 * ((x > 40) & (x < 46) & (y > 10) & (y < 50)).float()
    ab = torch.stack([0.5 * lightness, -0.3 * lightness])
    return lightness[None], ab


OPTICS = [
    InstrumentDraw(scale=1.3),
    InstrumentDraw(scale=0.8),
    InstrumentDraw(blur_sigma=1.2),
    InstrumentDraw(downsample=2.2),
    InstrumentDraw(scale=1.2, blur_sigma=0.8, downsample=1.7, gamma=0.6, gain=1.8, sky_offset=5, noise_sigma=3, jpeg_quality=30),
]


@pytest.mark.parametrize("draw", OPTICS, ids=lambda d: ",".join(f"{k}={v}" for k, v in dataclasses.asdict(d).items() if v != getattr(InstrumentDraw(), k)))
def test_the_colour_target_stays_on_the_light_after_each_transform(draw):
    lightness, ab = coloured_pattern()
    seen, true_lightness, moved_ab = imitate(lightness, ab, draw, torch.Generator().manual_seed(0))
    assert seen.shape == true_lightness.shape == lightness.shape and moved_ab.shape == ab.shape
    # Optics are linear, so colour proportional to light before is proportional to it after.
    assert torch.allclose(moved_ab[0], 0.5 * true_lightness[0], atol=1e-3)
    assert torch.allclose(moved_ab[1], -0.3 * true_lightness[0], atol=1e-3)
    # The blob's peak is still where the colour's peak is.
    assert int(moved_ab[0].argmax()) == int(true_lightness[0].argmax())


def test_photometric_changes_touch_only_what_the_network_sees():
    lightness, ab = coloured_pattern()
    draw = InstrumentDraw(gamma=0.5, gain=2.0, sky_offset=6.0, noise_sigma=2.0, jpeg_quality=25)
    seen, true_lightness, same_ab = imitate(lightness, ab, draw, torch.Generator().manual_seed(1))
    assert torch.equal(true_lightness, lightness) and torch.equal(same_ab, ab)
    assert not torch.allclose(seen, lightness, atol=1.0)
    assert seen.min() >= 0.0 and seen.max() <= 100.0
    assert (seen == 100.0).sum() > (lightness == 100.0).sum()  # gain 2 saturates the core


def test_gain_clips_like_a_saturated_detector():
    lightness = torch.linspace(0, 100, 101).view(1, 1, 101)
    seen = photometric(lightness, InstrumentDraw(gain=2.0), torch.Generator())
    assert torch.allclose(seen[0, 0, :50], lightness[0, 0, :50] * 2.0, atol=1e-3)
    assert (seen[0, 0, 50:] == 100.0).all()


def test_draws_depend_only_on_the_seed_and_leave_a_share_clean():
    augmentation = InstrumentAugmentation()

    def draws(seed):
        generator = torch.Generator().manual_seed(seed)
        return [augmentation.draw(generator) for _ in range(400)]

    first = draws(3)
    assert first == draws(3) and first != draws(4)
    clean = sum(d.is_identity for d in first) / len(first)
    assert 0.25 < clean < 0.5  # clean_share 0.35 (and rarely an augmented draw with no effect)
    assert any(d.jpeg_quality for d in first) and any(d.noise_sigma for d in first) and any(d.scale != 1.0 for d in first)


def test_zoom_out_pads_with_black_sky():
    image = torch.full((1, 3, 32, 32), 50.0)
    smaller = optical(image, InstrumentDraw(scale=0.5))
    assert smaller.shape == image.shape
    assert smaller[0, 0, 0, 0] == 0.0 and smaller[0, 0, 16, 16] == pytest.approx(50.0)
