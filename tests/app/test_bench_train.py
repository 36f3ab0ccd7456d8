"""Tests for `galcolor bench train`'s report: the previous and new default networks measured in one
run on one batch, with their ratio. Shapes only: speed is never asserted (the machine may be shared)."""

from __future__ import annotations

import math

from galcolor.app.arguments import build_parser
from galcolor.app.bench import NEW_DEFAULT, PREVIOUS_DEFAULT, bench_train
from galcolor.models import build_model, count_parameters
from galcolor.models.config import ModelConfig


def test_bench_train_reports_the_previous_and_new_default_side_by_side():
    figures = bench_train(ModelConfig(base_width=4, depth=2), "cpu", batch_size=2, crop=32, steps=1)
    # the existing figures stay
    assert {"baseline_eager_fp32", "tuned", "speedup"} <= figures.keys()
    previous, new = figures["previous_default"], figures["new_default"]
    assert previous["network"] == PREVIOUS_DEFAULT.network_label == "unet w16 d4 scale 1"
    assert new["network"] == NEW_DEFAULT.network_label
    for entry, config in ((previous, PREVIOUS_DEFAULT), (new, NEW_DEFAULT)):
        assert entry["images_per_s"] > 0 and math.isfinite(entry["images_per_s"])
        assert entry["parameters"] == count_parameters(build_model(config))
        assert entry["gflop_per_image"] > 0
    assert math.isclose(figures["new_vs_previous"], new["images_per_s"] / previous["images_per_s"])
    assert figures["default_comparison"]["batch_size"] == 2 and figures["default_comparison"]["crop"] == 32


def test_the_compared_configs_are_what_they_claim():
    """The previous default is the shipped architecture; the new one predicts chroma at reduced resolution."""
    assert PREVIOUS_DEFAULT == ModelConfig(base_width=16, depth=4)
    assert NEW_DEFAULT.working_scale > 1 and not NEW_DEFAULT.surveys
    # the default crop of training (128) must fit the new network's padding multiple
    assert 128 % NEW_DEFAULT.size_multiple == 0
    # and it is what `galcolor train` builds
    train = build_parser().parse_args(["train", "data", "--out", "run"])
    assert train.working_scale == NEW_DEFAULT.working_scale > 1
