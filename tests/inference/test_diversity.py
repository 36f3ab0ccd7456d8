"""--samples and --uncertainty on a classifier trained where colour is ambiguous by design."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from galcolor.models.checkpoint import load_checkpoint
from galcolor.app.cli import main
from galcolor.color.lab import lab_array_to_rgb8
from galcolor.models.config import ModelConfig
from galcolor.training.config import TrainConfig
from galcolor.inference.diversity import sample_ab, uncertainty
from galcolor.errors import GalcolorError
from galcolor.training.trainer import train

SIZE = 64


def _scene(disc_ab: tuple[float, float]) -> np.ndarray:
    """A disc at L 50 whose colour is red or blue (L cannot tell which), inside a neutral ring at L 85."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] - SIZE / 2
    r = np.hypot(y, x)
    lab = np.zeros((SIZE, SIZE, 3), dtype=np.float32)
    lab[r < 12] = (50.0, *disc_ab)
    lab[(r >= 16) & (r < 24)] = (85.0, 0.0, 0.0)
    return lab


DISC = np.hypot(*(np.mgrid[0:SIZE, 0:SIZE] - SIZE / 2)) < 10
RING = (lambda r: (r >= 17) & (r < 23))(np.hypot(*(np.mgrid[0:SIZE, 0:SIZE] - SIZE / 2)))


@pytest.fixture(scope="module")
def ambiguous_classifier(tmp_path_factory):
    data = tmp_path_factory.mktemp("ambiguous")
    for i in range(32):
        ab = (45.0, 30.0) if i % 2 else (5.0, -45.0)
        Image.fromarray(lab_array_to_rgb8(_scene(ab))).save(data / f"scene-{i:02d}.png")
    torch.manual_seed(0)
    result = train(
        data, tmp_path_factory.mktemp("run") / "run", ModelConfig(arch="unet", base_width=8, depth=2, head="classify"),
        TrainConfig(epochs=30, batch_size=8, crop=64, lr=5e-3, sky_weight=1.0, num_threads=1),
        progress=False, log=lambda text: None,
    )
    return load_checkpoint(result.best_path)


def _lightness(lab: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(lab[..., 0].copy())[None, None]


def test_uncertainty_is_higher_where_the_colour_is_ambiguous(ambiguous_classifier):
    spread = uncertainty(ambiguous_classifier, _lightness(_scene((45.0, 30.0))))[0, 0].numpy()
    assert spread[DISC].mean() > 2 * spread[RING].mean(), (spread[DISC].mean(), spread[RING].mean())


def test_samples_differ_from_each_other_and_are_spatially_coherent(ambiguous_classifier):
    lightness = _lightness(_scene((45.0, 30.0)))
    samples = [s[0].numpy() for s in sample_ab(ambiguous_classifier, lightness, 4, seed=1)]
    pairwise = [np.linalg.norm(a - b, axis=0)[DISC].mean() for i, a in enumerate(samples) for b in samples[i + 1 :]]
    assert np.mean(pairwise) > 5.0, pairwise

    def roughness(ab: np.ndarray) -> float:  # mean ab change between neighbouring disc pixels
        return float(np.linalg.norm(np.diff(ab, axis=2), axis=0)[DISC[:, 1:] & DISC[:, :-1]].mean())

    speckled = [s[0].numpy() for s in sample_ab(ambiguous_classifier, lightness, 4, seed=1, correlation=0.3)]
    assert np.mean([roughness(s) for s in samples]) < 0.33 * np.mean([roughness(s) for s in speckled])


def test_a_lower_sample_temperature_draws_closer_samples_and_zero_is_refused(ambiguous_classifier):
    """The disc is ambiguous by design: at T = 1 its samples disagree; sharpened, they gather nearer the mode."""
    lightness = _lightness(_scene((45.0, 30.0)))

    def mean_pairwise(temperature: float) -> float:
        samples = [s[0].numpy() for s in sample_ab(ambiguous_classifier, lightness, 4, seed=1, temperature=temperature)]
        return float(np.mean([np.linalg.norm(a - b, axis=0)[DISC].mean() for i, a in enumerate(samples) for b in samples[i + 1 :]]))

    assert mean_pairwise(0.3) < 0.7 * mean_pairwise(1.0)
    with pytest.raises(GalcolorError, match="temperature must be positive"):
        sample_ab(ambiguous_classifier, lightness, 2, temperature=0.0)


def test_cli_sample_temperature_reaches_the_samples(ambiguous_classifier, tmp_path):
    source = tmp_path / "in" / "scene.png"
    source.parent.mkdir()
    Image.fromarray(lab_array_to_rgb8(_scene((45.0, 30.0)))).save(source)
    written = {}
    for temperature in ("1", "0.3"):
        out = tmp_path / f"out-{temperature}"
        assert main(["colorize", str(source), "-o", str(out), "--model", str(ambiguous_classifier.source),
                     "--samples", "1", "--sample-temperature", temperature, "-q"]) == 0
        with Image.open(out / "scene.sample-1.png") as sample:
            written[temperature] = np.asarray(sample)
    assert not np.array_equal(written["1"], written["0.3"])  # same seed: only the temperature differs


def test_cli_writes_samples_and_uncertainty_beside_the_png(ambiguous_classifier, tmp_path):
    source = tmp_path / "in" / "scene.png"
    source.parent.mkdir()
    Image.fromarray(lab_array_to_rgb8(_scene((5.0, -45.0)))).save(source)
    out = tmp_path / "out"
    code = main(["colorize", str(source), "-o", str(out), "--model", str(ambiguous_classifier.source),
                 "--samples", "2", "--uncertainty", "-q"])
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["scene.png", "scene.sample-1.png", "scene.sample-2.png", "scene.uncertainty.npy", "scene.uncertainty.png"]
    spread = np.load(out / "scene.uncertainty.npy")
    assert spread.shape == (SIZE, SIZE) and np.isfinite(spread).all()
    with Image.open(out / "scene.sample-1.png") as a, Image.open(out / "scene.sample-2.png") as b:
        assert a.size == (SIZE, SIZE) and not np.array_equal(np.asarray(a), np.asarray(b))


def test_a_regression_model_refuses_samples_with_one_line(tiny_model_path, tmp_path, capsys):
    source = tmp_path / "scene.png"
    Image.fromarray(lab_array_to_rgb8(_scene((5.0, -45.0)))).save(source)
    assert main(["colorize", str(source), "-o", str(tmp_path / "out"), "--model", str(tiny_model_path), "--samples", "2"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("galcolor: error:") and "classification model" in error and "\n" not in error
    with pytest.raises(GalcolorError):
        uncertainty(load_checkpoint(tiny_model_path), torch.zeros(1, 1, 8, 8))


def test_an_image_too_large_for_a_distribution_is_coloured_and_its_extras_refused(tiny_classifier_path, tmp_path, capsys):
    source = tmp_path / "wide.png"
    Image.fromarray(np.full((24, 1100), 60, np.uint8)).save(source)  # wider than one tile
    out = tmp_path / "out"
    assert main(["colorize", str(source), "-o", str(out), "--model", str(tiny_classifier_path), "--uncertainty", "-q"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["wide.png"]  # the colour is there, no partial extras
    error = capsys.readouterr().err.strip()
    assert "wide.png: coloured, but" in error and "1024 px" in error and "\n" not in error
