"""Shared fixtures: the real galaxy data beside the project, and small trained models."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SDSS = SHARED_DATA / "sdss-gz2"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny test models run faster on one thread, and results don't depend on the core count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def sdss_dir() -> Path:
    """The real SDSS colour galaxies (../shared/data/sdss-gz2); tests that need them skip without."""
    if not (SDSS / "spirals").is_dir():
        pytest.skip(f"real SDSS data not found at {SDSS} (expected ../shared/data beside the project)")
    return SDSS


@pytest.fixture(scope="session")
def few_galaxies(sdss_dir: Path, tmp_path_factory) -> Path:
    """A folder with 6 spirals and 6 non-spirals copied from the real data (keeps the folder labels)."""
    import shutil

    root = tmp_path_factory.mktemp("few_galaxies")
    for kind in ("spirals", "non_spirals"):
        (root / kind).mkdir()
        for path in sorted((sdss_dir / kind).glob("*.jpg"))[:6]:
            shutil.copy(path, root / kind / path.name)
    return root


@pytest.fixture(scope="session")
def tiny_model_path(few_galaxies: Path, tmp_path_factory) -> Path:
    """best.safetensors of a tiny U-Net (width 4, depth 2) trained 1 epoch on `few_galaxies` (a few seconds).

    The shipped model may not exist yet; tests pass this one with --model / load_model(path).
    """
    from galcolor.models.config import ModelConfig
    from galcolor.training.config import TrainConfig
    from galcolor.training.trainer import train

    run = tmp_path_factory.mktemp("tiny_run") / "run"
    result = train(
        few_galaxies, run, ModelConfig(arch="unet", base_width=4, depth=2), TrainConfig(epochs=1, batch_size=4, crop=64),
        progress=False, log=lambda text: None,
    )
    return result.best_path


@pytest.fixture(scope="session")
def tiny_classifier_path(few_galaxies: Path, tmp_path_factory) -> Path:
    """best.safetensors of a tiny U-Net with a classification head (ab bins), 1 epoch on `few_galaxies`."""
    from galcolor.models.config import ModelConfig
    from galcolor.training.config import TrainConfig
    from galcolor.training.trainer import train

    run = tmp_path_factory.mktemp("tiny_cls_run") / "run"
    result = train(
        few_galaxies, run, ModelConfig(arch="unet", base_width=4, depth=2, head="classify"),
        TrainConfig(epochs=1, batch_size=4, crop=64), progress=False, log=lambda text: None,
    )
    return result.best_path


def galaxy_field(height: int, width: int, seed: int = 0):
    """A synthetic (1, 1, H, W) lightness: a few Gaussian galaxies and stars on a noisy black sky."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width].astype(np.float32)
    lightness = np.zeros((height, width), np.float32)
    for cy, cx, sigma, peak in [(0.5, 0.5, 40, 90), (0.23, 0.2, 10, 70), (0.77, 0.8, 15, 80), (0.15, 0.83, 6, 60), (0.5, 0.33, 4, 95)]:
        lightness += peak * np.exp(-((y - cy * height) ** 2 + (x - cx * width) ** 2) / (2 * sigma**2))
    lightness += rng.normal(0.0, 1.5, (height, width)).astype(np.float32)
    return torch.from_numpy(np.clip(lightness, 0.0, 100.0))[None, None]


def grey_frame(lightness):
    """(1, 1, H, W) L in [0, 100] -> (the (H, W, 3) float32 grey sRGB of it, as a file would hold it, and
    that image's own (1, 1, H, W) L), for comparing whole, tiled and streamed colouring of one frame."""
    import numpy as np
    import torch

    from galcolor.color.lab import rgb_to_lab

    rgb = np.repeat((lightness[0, 0].numpy() / 100.0)[..., None], 3, axis=2).astype(np.float32)
    return rgb, rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])[:, :1]


def tiled_and_streamed(model, rgb, lightness, tile: int, overlap: int, band: int = 40):
    """The (1, 2, H, W) ab of one frame coloured in tiles, and the same streamed in row bands."""
    import torch

    from galcolor.inference.bands import lab_bands
    from galcolor.inference.predict import predict_ab_tiled

    height, width = rgb.shape[:2]
    tiled = predict_ab_tiled(model, lightness, tile=tile, overlap=overlap)
    streamed = torch.cat([lab for _, lab in lab_bands(model, lambda top, bottom: rgb[top:bottom], height, width,
                                                      tile=tile, overlap=overlap, band=band)], dim=2)
    return tiled, streamed[:, 1:]


def paler_copies(source: Path, target: Path, chroma: float, shift: tuple[float, float] = (0.0, 0.0)) -> Path:
    """The same galaxies as a survey that renders colour `chroma` times as strongly (same L), and
    moved by `shift` in (a*, b*) where given."""
    import numpy as np
    from PIL import Image

    from galcolor.color.lab import lab_array_to_rgb8, rgb_array_to_lab

    for path in sorted(source.rglob("*.jpg")):
        lab = rgb_array_to_lab(np.asarray(Image.open(path).convert("RGB")))
        lab[..., 1:] = lab[..., 1:] * chroma + np.asarray(shift, np.float32)
        out = target / path.relative_to(source).with_suffix(".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(lab_array_to_rgb8(lab)).save(out)
    return target


@pytest.fixture(scope="session")
def two_style_model_path(few_galaxies: Path, tmp_path_factory) -> Path:
    """best.safetensors of a small survey-conditioned U-Net trained on `few_galaxies` (survey
    'vivid') and the same galaxies rendered at a quarter of the colour (survey 'pale'): the grey
    input is identical, so only the survey named can change its colour."""
    from galcolor.models.config import ModelConfig
    from galcolor.training.config import TrainConfig
    from galcolor.training.trainer import train

    root = tmp_path_factory.mktemp("two_styles")
    pale = paler_copies(few_galaxies, root / "pale", chroma=0.25)
    config = TrainConfig(epochs=6, batch_size=4, crop=64, num_threads=1, condition_on_survey=True, augment="none", lr=3e-3,
                         survey_names=("vivid", "pale"))
    return train([few_galaxies, pale], root / "run", ModelConfig(base_width=8, depth=2), config,
                 progress=False, log=lambda text: None).best_path


@pytest.fixture(scope="module")
def staged(two_style_model_path):
    """The two-survey test model with a galaxy-colour stage (each survey's estimate a different
    colour) and a saturation per survey: what the shipped model carries."""
    import dataclasses

    import torch

    from galcolor.app.api import load_model
    from galcolor.models.galaxy_colour import GalaxyColourNet

    model = load_model(two_style_model_path, device="cpu")
    stage = GalaxyColourNet(len(model.config.surveys), width=4).eval()
    with torch.no_grad():
        stage.centre.copy_(torch.tensor([[4.0, 12.0], [-3.0, -6.0]]))
        stage.spread.fill_(2.0)
    return dataclasses.replace(model, galaxy_colour=stage, survey_saturation=(1.0, 0.4), caution=None)
