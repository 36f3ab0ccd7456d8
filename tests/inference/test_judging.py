"""Judging a frame by its main galaxy (inference.judging): the view puts the galaxy at the centre at a training
size, and a held-out galaxy reframed keeps the survey, caution and colour its training crop gets."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
import torch
from PIL import Image

from galcolor.app.api import load_model
from galcolor.color.lab import rgb_to_lab
from galcolor.evaluation.framing import reduced
from galcolor.inference.judging import GALAXY_AT, TRAINING_RADII, VIEW, main_galaxy_of, predict_ab_judged, view_of, view_scale
from galcolor.inference.predict import predict_ab
from galcolor.models.galaxy_colour import flux_weighted_mean

DEMO = resources.files("galcolor") / "demo_galaxies" / "sdss-214718.jpg"  # a held-out SDSS spiral


def lightness_of(rgb8: np.ndarray) -> torch.Tensor:
    return rgb_to_lab(torch.from_numpy(rgb8.astype(np.float32) / 255.0).permute(2, 0, 1)[None])[:, :1]


def test_the_view_holds_the_galaxy_where_and_as_large_as_training_crops_do():
    crop = np.asarray(Image.open(DEMO).convert("RGB"))
    small = lightness_of(reduced(reduced(crop)))  # the galaxy at a quarter of its size, in a 64 px frame
    galaxy = main_galaxy_of(small)
    scale = view_scale(galaxy)
    assert scale > 1  # too small for a training crop: enlarged
    view = view_of(small, galaxy, scale)
    assert view.shape[-2:] == (VIEW, VIEW)
    seen = main_galaxy_of(view)
    assert seen.distance(GALAXY_AT, GALAXY_AT) < 3
    assert TRAINING_RADII[0] * 0.85 <= seen.half_light_radius <= TRAINING_RADII[1] * 1.15


def test_a_reduced_galaxy_is_judged_as_its_training_crop():
    """Reduced to half its size, the crop is faded to grey when the frame is judged whole; judged by its main galaxy it
    is recognised as SDSS, kept in colour, and as red or blue as the crop (its mean b* of the crop's sign, at least
    half as strong: the galaxy-colour stage's estimate moves by several b* with the galaxy's position to a pixel)."""
    model = load_model()
    crop = np.asarray(Image.open(DEMO).convert("RGB"))
    crop_verdicts, judged_verdicts = [], []
    crop_lightness, small_lightness = lightness_of(crop), lightness_of(reduced(crop))
    crop_ab = predict_ab(model, crop_lightness, crop_verdicts).float().cpu()
    small_ab = predict_ab_judged(model, small_lightness, judged_verdicts).float().cpu()
    assert crop_verdicts[0].survey == judged_verdicts[0].survey == "sdss"
    assert crop_verdicts[0].colour_kept > 0.5 and judged_verdicts[0].colour_kept > 0.5
    crop_mean = flux_weighted_mean(crop_lightness, crop_ab)[0][0]
    small_mean = flux_weighted_mean(small_lightness, small_ab)[0][0]
    assert abs(crop_mean[1]) > 2  # a colour to compare, not grey
    assert small_mean[1] * torch.sign(crop_mean[1]) > 0.5 * abs(crop_mean[1])


def test_a_frame_without_sources_is_coloured_as_before():
    model = load_model()
    sky = torch.zeros(1, 1, 64, 64)
    assert main_galaxy_of(sky) is None
    assert torch.allclose(predict_ab_judged(model, sky), predict_ab(model, sky))


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_view_of_places_the_galaxy_pixel_at_the_centre(scale):
    frame = torch.zeros(1, 1, 100, 80)
    frame[..., 30, 20] = 1.0  # a one-pixel source at x 20, y 30
    from galcolor.inference.sources import Source

    view = view_of(frame, Source(20.0, 30.0, 1.0, 2.0, 1.0, 1, True), scale, side=32, at=15.5)
    row, column = np.unravel_index(int(view[0, 0].argmax()), view.shape[-2:])
    assert abs(row - 15.5) <= 1 and abs(column - 15.5) <= 1
