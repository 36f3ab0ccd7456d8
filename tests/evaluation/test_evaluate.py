"""Scoring beside the baselines: which methods run, what the baselines predict, the table and report."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from galcolor.app.api import load_model
from galcolor.evaluation.baselines import gray_ab, lut_ab
from galcolor.models.checkpoint import LoadedModel
from galcolor.color.lab import rgb_to_lab
from galcolor.evaluation.evaluate import Method, format_table, methods_for, science_rows, score_images, write_report
from galcolor.inference.predict import predict_ab
from galcolor.evaluation.metrics import LOWER_IS_BETTER, METRIC_NAMES


@pytest.fixture(scope="module")
def model(tiny_model_path) -> LoadedModel:
    return load_model(tiny_model_path)


@pytest.fixture(scope="module")
def three_galaxies(few_galaxies) -> tuple[list[np.ndarray], list[int], list[str]]:
    """Two spirals and a non-spiral, uint8 (256, 256, 3)."""
    paths = sorted((few_galaxies / "spirals").glob("*.jpg"))[:2] + sorted((few_galaxies / "non_spirals").glob("*.jpg"))[:1]
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    return images, [1, 1, 0], [p.name for p in paths]


def test_methods_for_adds_lut_only_when_a_model_carries_its_table(model):
    without = dataclasses.replace(model, lut_ab=None)
    assert [m.name for m in methods_for([("a", without)])] == ["gray", "a"]
    assert [m.name for m in methods_for([("a", model)])] == ["gray", "lut", "a"]
    assert [m.name for m in methods_for([("a", without), ("b", model)])] == ["gray", "lut", "a", "b"]
    assert [m.name for m in methods_for([])] == ["gray"]


def test_lut_comes_from_the_first_model_that_has_one(model):
    first = dataclasses.replace(model, lut_ab=torch.full((101, 2), 3.0))
    second = dataclasses.replace(model, lut_ab=torch.full((101, 2), -7.0))
    lut = {m.name: m for m in methods_for([("a", dataclasses.replace(model, lut_ab=None)), ("b", first), ("c", second)])}["lut"]
    assert torch.equal(lut.predict(torch.full((1, 1, 4, 4), 50.0)), torch.full((1, 2, 4, 4), 3.0))


def test_model_methods_predict_with_their_own_model(model):
    lightness = torch.rand(1, 1, 24, 40) * 100
    method = methods_for([("tiny", model)])[-1]
    assert torch.equal(method.predict(lightness), predict_ab(model, lightness))


def test_gray_predicts_zeros():
    lightness = torch.rand(2, 1, 9, 11) * 100
    kept = lightness.clone()
    ab = gray_ab(lightness)
    assert ab.shape == (2, 2, 9, 11) and ab.dtype == lightness.dtype
    assert torch.count_nonzero(ab) == 0
    ab[:, 0] = 1.0  # a writable array of its own: the input is not touched
    assert torch.equal(lightness, kept) and torch.count_nonzero(ab[:, 1]) == 0


def test_lut_baseline_reproduces_its_table(model):
    table = model.lut_ab
    assert table is not None and table.shape == (101, 2)
    lightness = torch.arange(101, dtype=torch.float32).reshape(1, 1, 1, 101)
    ab = lut_ab(lightness, table)
    assert ab.shape == (1, 2, 1, 101)
    assert torch.equal(ab[0, :, 0].T, table)  # L = i -> row i
    # Values round to the nearest integer L and clamp to [0, 100].
    odd = torch.tensor([[[[10.4, 10.6, -5.0, 130.0, 99.5]]]])
    expected = table[[10, 11, 0, 100, 100]].T
    assert torch.allclose(lut_ab(odd, table)[0, :, 0], expected)
    synthetic = torch.stack([torch.arange(101.0), -torch.arange(101.0)], dim=1)
    assert torch.equal(lut_ab(torch.full((3, 1, 2, 2), 42.0), synthetic), torch.tensor([42.0, -42.0]).view(1, 2, 1, 1).expand(3, 2, 2, 2))


def test_format_table_marks_lower_is_better_metrics():
    summaries = {"gray": {m: 1.0 for m in METRIC_NAMES}, "model": {**{m: 0.5 for m in METRIC_NAMES}, "colour_r": float("nan")}}
    table = format_table(summaries)
    lines = table.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[0] == "method"
    for metric, cell in zip(METRIC_NAMES, header[1:]):
        assert cell == f"{metric} {'↓' if metric in LOWER_IS_BETTER else '↑'}"
    assert {"de00_fg ↓", "ab_fg ↓", "dcf ↓", "psnr ↑", "auc_fg ↑", "colour_r ↑"} <= set(header)
    assert set(lines[1]) <= {"|", "-"}
    assert len(lines) == 4 and lines[2].startswith("| gray |") and lines[3].startswith("| model |")
    row = [cell.strip() for cell in lines[3].strip("|").split("|")]
    assert row[1 + METRIC_NAMES.index("colour_r")] == "n/a"
    assert row[1 + METRIC_NAMES.index("psnr")] == "0.50" and row[1 + METRIC_NAMES.index("auc_fg")] == "0.500"


def test_score_images_on_real_galaxies(model, three_galaxies, tmp_path):
    images, labels, names = three_galaxies
    methods = methods_for([("tiny", model)])
    scored = score_images(images, labels, names, methods, examples=2, progress=False)

    assert list(scored.summaries) == ["gray", "lut", "tiny"]
    for name, summary in scored.summaries.items():
        assert summary["n_images"] == 3 and summary["n_without_signal"] == 0, name
        for metric in METRIC_NAMES:
            assert metric in summary, (name, metric)
        assert summary["de00_fg"] > 0 and summary["ab_fg"] > 0
        assert 0 <= summary["auc_fg"] <= 1
    # Truth-only metrics do not depend on the method.
    assert len({s["truth_class_auc"] for s in scored.summaries.values()}) == 1
    # Science rows: real galaxies have a measurable colour gradient, which grey cannot reproduce.
    assert scored.summaries["gray"]["gradient_err"] > 0
    assert all("sf_recall" in s and "gradient_err" in s and "red_blue_auc" in s for s in scored.summaries.values())
    assert "sf_precision" in science_rows(scored)["clumps of L"]  # the colour-free baseline of star-forming regions
    # gray keeps the image grey: no colourfulness, so dcf is the truth's colourfulness.
    gray_images = scored.accumulators["gray"].per_image
    assert all(m["colourfulness_pred"] < 1.0 for m in gray_images)

    assert len(scored.examples) == 2
    for (name, grey, predictions, real), index in zip(scored.examples, (0, 2)):  # first and last
        assert name == names[index]
        assert np.array_equal(real, images[index])
        assert set(predictions) == {"gray", "lut", "tiny"}
        assert grey.dtype == np.uint8 and grey.shape == real.shape
        assert np.abs(grey.astype(int) - grey[..., :1]).max() <= 1, "the grey example has equal channels"
        for prediction in predictions.values():
            assert prediction.shape == real.shape and prediction.dtype == np.uint8

    paths = write_report(scored, tmp_path / "report", {"data": "three galaxies", "split": "test"}, "tiny")
    for key in ("json", "markdown", "examples", "scatter"):
        assert paths[key].is_file(), key
    report = json.loads(paths["json"].read_text(), parse_constant=lambda token: pytest.fail(f"{token} in report.json"))
    assert set(report["metrics"]) == {"gray", "lut", "tiny"} and report["split"] == "test"
    assert "| tiny |" in paths["markdown"].read_text()


def test_a_method_that_knows_the_truth_scores_perfectly(three_galaxies):
    """Wiring check: a method handed the true ab must get ~0 error and colour_r ~ 1."""
    images, labels, names = three_galaxies
    truths = iter([rgb_to_lab(torch.from_numpy(np.array(im)).permute(2, 0, 1)[None].float() / 255.0)[:, 1:] for im in images])
    oracle = Method("oracle", lambda lightness: next(truths))
    summary = score_images(images, labels, names, [Method("gray", gray_ab), oracle], progress=False).summaries["oracle"]
    assert summary["de00_fg"] < 0.5 and summary["ab_fg"] < 1.0
    assert summary["auc_fg"] > 0.99 and summary["psnr"] > 40
    assert summary["colour_r"] > 0.999
    assert summary["class_auc"] == summary["truth_class_auc"]


def test_a_classifier_is_scored_on_how_well_its_uncertainty_predicts_its_error(tiny_classifier_path, three_galaxies):
    from galcolor.models.checkpoint import load_checkpoint

    images, labels, names = three_galaxies
    scored = score_images(images, labels, names, methods_for([("cls", load_checkpoint(tiny_classifier_path))]), progress=False)
    value = scored.summaries["cls"]["uncertainty_spearman"]
    assert -1.0 <= value <= 1.0
    assert "uncertainty_spearman" not in scored.summaries["gray"]  # a baseline has no uncertainty to score


def test_uncertainty_calibration_is_one_when_spread_ranks_error_perfectly():
    from galcolor.evaluation.evaluate import UncertaintyCalibration

    true = np.zeros((8, 8, 3))
    true[..., 0] = 50
    pred = true.copy()
    pred[..., 1] = np.arange(64).reshape(8, 8)  # error grows pixel by pixel
    calibration = UncertaintyCalibration()
    calibration.add(true, pred, spread=np.arange(64).reshape(8, 8) * 0.1)
    assert calibration.summary()["uncertainty_spearman"] == pytest.approx(1.0)
    reversed_calibration = UncertaintyCalibration()
    reversed_calibration.add(true, pred, spread=-np.arange(64).reshape(8, 8))
    assert reversed_calibration.summary()["uncertainty_spearman"] == pytest.approx(-1.0)
