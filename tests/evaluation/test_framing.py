"""Framing scores (evaluation.framing): each galaxy scored against its own part of the frame, and the
crops' framing scoring exactly what `galcolor evaluate` scores, so the framings compare with its figures."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
from PIL import Image

from galcolor.app.api import load_model
from galcolor.evaluation.evaluate import methods_for, score_images
from galcolor.evaluation.framing import FIELD_SIDE, enlarged, reduced, reframe, score_framing

DEMO = resources.files("galcolor") / "demo_galaxies"
SDSS = ["sdss-111793.jpg", "sdss-151180.jpg", "sdss-214718.jpg"]


def demo(name: str) -> np.ndarray:
    return np.asarray(Image.open(DEMO / name).convert("RGB"))


def test_fields_score_each_galaxy_against_itself():
    images = [np.full((8, 6, 3), value, dtype=np.uint8) for value in range(9)]  # 9 galaxies: two fields, one left over
    framed = reframe(images, "fields")
    assert len(framed) == 9 // FIELD_SIDE**2
    for item in framed:
        assert item.frame.shape == (8 * FIELD_SIDE, 6 * FIELD_SIDE, 3)
        for (rows, columns), member in zip(item.regions, item.members):
            assert np.array_equal(item.frame[rows, columns], images[member])


def test_zooms_keep_or_halve_the_frame():
    image = demo(SDSS[0])
    assert enlarged(image).shape == image.shape
    assert reduced(image).shape == (image.shape[0] // 2, image.shape[1] // 2, 3)


def test_the_crops_framing_scores_as_evaluate_does():
    model = load_model()
    images = [demo(name) for name in SDSS]
    labels, names = [0, 1, 1], SDSS
    framed = score_framing(reframe(images, "crop"), labels, names, [("shipped", model)], "sdss", "crop")
    direct = score_images(images, labels, names, methods_for([("shipped", model)]), progress=False).summaries
    for method in ("gray", "lut", "shipped"):
        assert framed.summaries[method]["de00_fg"] == pytest.approx(direct[method]["de00_fg"], abs=0.02)
    assert framed.galaxies == len(images)
    # the training crops' own framing: recognised as SDSS, and caution keeps their colour
    assert framed.recognised["shipped"] == len(images) and framed.faded["shipped"] == 0
