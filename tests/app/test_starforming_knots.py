"""The star-forming map on a real galaxy: a held-out SDSS spiral shipped with galcolor (so this runs
without ../shared), whose true colour has blue knots, coloured from its L by the shipped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import galcolor
from galcolor.color.lab import rgb_array_to_lab
from galcolor.inference.science import TRUE_EXCESS, starforming_regions

SPIRAL = Path(galcolor.__file__).parent / "demo_galaxies" / "sdss-151180.jpg"  # CREDITS.md: val split of sdss-gz2


@pytest.mark.xfail(strict=True, reason="issue #29 item 3, open: on this spiral the shipped colour's blue excess peaks at "
                   "1.9 b* as delivered, under its calibrated threshold (3.0 at full strength, times the saturation); remove this mark "
                   "when a model that finds its knots ships")
def test_the_star_forming_map_of_a_held_out_spiral_finds_one_of_its_true_knots():
    rgb = np.asarray(Image.open(SPIRAL).convert("RGB"))
    true_labels, true_count = starforming_regions(rgb_array_to_lab(rgb / 255.0), TRUE_EXCESS)
    assert true_count >= 2, "the truth of this spiral has blue knots: the test needs them"
    coloured = galcolor.colorize(rgb, science=True)  # reduced to its L first: the true colour never reaches the model
    found = coloured.starforming > 0
    assert found.any(), f"no star-forming region found; the truth has {true_count}"
    assert (found & ndimage.binary_dilation(true_labels > 0)).any(), "regions found, none of them on a true knot"
