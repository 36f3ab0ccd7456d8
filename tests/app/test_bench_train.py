"""Tests for `galcolor bench train`'s report: the current and proposed default networks measured in one
run on one batch, with their ratio. Shapes only: speed is never asserted (the machine may be shared)."""

from __future__ import annotations

import math

from galcolor.app.bench import CURRENT_DEFAULT, PROPOSED_DEFAULT, bench_train
from galcolor.models import build_model, count_parameters
from galcolor.models.config import ModelConfig


def test_bench_train_reports_the_current_and_proposed_default_side_by_side():
    figures = bench_train(ModelConfig(base_width=4, depth=2), "cpu", batch_size=2, crop=32, steps=1)
    # the existing figures stay
    assert {"baseline_eager_fp32", "tuned", "speedup"} <= figures.keys()
    current, proposed = figures["current_default"], figures["proposed_default"]
    assert current["network"] == CURRENT_DEFAULT.network_label == "unet w16 d4 scale 1"
    assert proposed["network"] == PROPOSED_DEFAULT.network_label
    for entry, config in ((current, CURRENT_DEFAULT), (proposed, PROPOSED_DEFAULT)):
        assert entry["images_per_s"] > 0 and math.isfinite(entry["images_per_s"])
        assert entry["parameters"] == count_parameters(build_model(config))
        assert entry["gflop_per_image"] > 0
    assert math.isclose(figures["proposed_vs_current"], proposed["images_per_s"] / current["images_per_s"])
    assert figures["default_comparison"]["batch_size"] == 2 and figures["default_comparison"]["crop"] == 32


def test_the_compared_configs_are_what_they_claim():
    """The current default is the shipped architecture; the proposed one predicts chroma at reduced resolution."""
    assert CURRENT_DEFAULT == ModelConfig(base_width=16, depth=4)
    assert PROPOSED_DEFAULT.working_scale > 1 and not PROPOSED_DEFAULT.surveys
    # the default crop of training (128) must fit the proposed network's padding multiple
    assert 128 % PROPOSED_DEFAULT.size_multiple == 0
