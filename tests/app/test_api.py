"""The Python API: galcolor.colorize on every kind of image a user may hold, and load_model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kornia.color import lab_to_rgb as unclipped_lab_to_rgb
from PIL import Image

import galcolor
from galcolor.inference.arrays import as_rgb_float, colorize_lab
from galcolor.app.api import colorize, load_model, shipped_model_path
from galcolor.models.checkpoint import LoadedModel
from galcolor.color.lab import lab_to_rgb, rgb_array_to_lab
from galcolor.errors import GalcolorError


@pytest.fixture(scope="module")
def model(tiny_model_path) -> LoadedModel:
    return load_model(tiny_model_path)


@pytest.fixture(scope="module")
def galaxy(sdss_dir) -> np.ndarray:
    """A real SDSS colour galaxy, uint8 (256, 256, 3)."""
    path = sorted((sdss_dir / "spirals").glob("*.jpg"))[0]
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def grey_of(rgb8: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb8).convert("L"))


def as_inputs(rgb8: np.ndarray) -> dict[str, object]:
    """The same picture in every form colorize accepts."""
    grey = grey_of(rgb8)
    rgba = np.dstack([rgb8, np.full(rgb8.shape[:2], 255, np.uint8)])
    return {
        "uint8 grey (H, W)": grey,
        "uint8 grey (H, W, 1)": grey[..., None],
        "uint8 RGB": rgb8,
        "uint16 grey": grey.astype(np.uint16) * 257,
        "float32 grey in [0, 1]": grey.astype(np.float32) / 255.0,
        "float64 RGB in [0, 1]": rgb8 / 255.0,
        "uint8 RGBA": rgba,
        "non-contiguous RGB view": np.ascontiguousarray(rgb8[:, ::-1])[:, ::-1],
        "PIL L": Image.fromarray(grey, "L"),
        "PIL RGB": Image.fromarray(rgb8, "RGB"),
        "PIL RGBA": Image.fromarray(rgba, "RGBA"),
        "PIL I;16": Image.fromarray(grey.astype(np.uint16) * 257),
        "torch float (H, W, 3)": torch.from_numpy(rgb8.astype(np.float32) / 255.0),
        "torch uint8 (H, W)": torch.from_numpy(grey.copy()),
        "torch bfloat16 (H, W, 3)": torch.from_numpy(rgb8.astype(np.float32) / 255.0).to(torch.bfloat16),
    }


@pytest.mark.parametrize("size", [(96, 128), (37, 53), (1, 1)], ids=["96x128", "37x53", "1x1"])
def test_every_input_form_gives_uint8_rgb_of_the_same_size(model, galaxy, size):
    height, width = size
    crop = galaxy[80 : 80 + height, 64 : 64 + width]  # around the galaxy at the centre
    results = {}
    for name, image in as_inputs(crop).items():
        out = colorize(image, model)
        assert isinstance(out, np.ndarray), name
        assert out.dtype == np.uint8 and out.shape == (height, width, 3), (name, out.dtype, out.shape)
        results[name] = out
    # The same picture in another container gives the same colours (all forms carry the same L
    # to within 8-bit rounding, so allow a few levels).
    reference = results["uint8 grey (H, W)"]
    for name in ("uint8 grey (H, W, 1)", "uint16 grey", "float32 grey in [0, 1]", "PIL L", "PIL I;16", "torch uint8 (H, W)"):
        assert np.abs(results[name].astype(int) - reference).max() <= 2, name
    assert np.array_equal(results["uint8 RGB"], results["PIL RGB"])
    assert np.array_equal(results["uint8 RGB"], results["uint8 RGBA"])  # opaque alpha changes nothing
    assert np.array_equal(results["uint8 RGB"], results["non-contiguous RGB view"])


def test_a_colour_input_is_reduced_to_its_lightness(model, galaxy):
    """Two pictures with the same L but different colours come out the same."""
    lab = torch.from_numpy(rgb_array_to_lab(galaxy / 255.0)).permute(2, 0, 1)[None]
    lab[:, 1:] = 0.5 * lab[:, 1:]  # half the chroma: stays inside the sRGB gamut
    with torch.inference_mode():
        paler = lab_to_rgb(lab)[0].permute(1, 2, 0).numpy()
    out_vivid = colorize(galaxy.astype(np.float32) / 255.0, model)
    out_pale = colorize(paler, model)
    assert np.abs(out_vivid.astype(int) - out_pale).max() <= 2


def test_colorize_keeps_lightness_where_the_prediction_is_in_gamut(model, galaxy):
    out = colorize(galaxy, model)
    predicted, input_lab = colorize_lab(galaxy / 255.0, model)
    assert np.array_equal(predicted[..., 0], input_lab[..., 0]), "the predicted Lab carries the input's L exactly"
    with torch.inference_mode():
        raw = unclipped_lab_to_rgb(torch.from_numpy(predicted).permute(2, 0, 1)[None], clip=False)[0].permute(1, 2, 0).numpy()
    keep = ((raw >= -1e-3) & (raw <= 1 + 1e-3)).all(axis=2)
    delta = np.abs(rgb_array_to_lab(out / 255.0)[..., 0] - rgb_array_to_lab(galaxy / 255.0)[..., 0])
    assert keep.sum() > 100
    assert delta[keep].max() <= 1.0


def test_colorize_keeps_lightness_everywhere(model, galaxy):
    out = colorize(galaxy, model)
    delta = np.abs(rgb_array_to_lab(out / 255.0)[..., 0] - rgb_array_to_lab(galaxy / 255.0)[..., 0])
    assert delta.max() <= 1.0


def test_colorize_is_deterministic_and_the_package_exports_it(model, galaxy):
    first = galcolor.colorize(galaxy, model=model)
    assert np.array_equal(first, colorize(galaxy, model))
    assert galcolor.load_model is load_model


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((2, 3, 5, 5), np.uint8),
        np.zeros((5, 5, 2), np.uint8),
        np.zeros((5, 5, 5), np.float32),
        np.zeros(7, np.uint8),
        np.array(3.0),
        np.zeros((0, 5), np.uint8),
        np.zeros((5, 0, 3), np.uint8),
        np.zeros((5, 5), np.int64),
        np.zeros((5, 5), bool),
        np.zeros((5, 5), np.complex64),
        "not an image",
        None,
        torch.zeros(3, 5, 5),  # channels first: not (H, W, 3)
    ],
    ids=["4-D", "2 channels", "5 channels", "1-D", "scalar", "zero height", "zero width", "int64", "bool",
         "complex", "str", "None", "torch CHW"],
)
def test_bad_shapes_and_types_raise_galcolor_error(model, image):
    with pytest.raises(GalcolorError):
        colorize(image, model)


def test_zero_size_pil_image_raises_galcolor_error(model):
    with pytest.raises(GalcolorError):
        colorize(Image.new("L", (0, 0)), model)


def test_as_rgb_float_scales_composites_and_cleans():
    assert as_rgb_float(np.array([[0, 255]], np.uint8)).tolist() == [[[0.0] * 3, [1.0] * 3]]
    assert as_rgb_float(np.array([[65535]], np.uint16))[0, 0].tolist() == [1.0, 1.0, 1.0]
    floats = as_rgb_float(np.array([[np.nan, 0.0, 1.0, 0.25]], np.float32))
    assert floats.dtype == np.float32 and floats[0, :, 0].tolist() == [0.0, 0.0, 1.0, 0.25]
    rgba = np.array([[[255, 0, 0, 0], [255, 0, 0, 255], [0, 255, 0, 51]]], np.uint8)
    composited = as_rgb_float(rgba)  # alpha over black sky
    assert np.allclose(composited[0], [[0, 0, 0], [1, 0, 0], [0, 0.2, 0]], atol=1e-6)


def test_linear_grey_floats_get_the_fits_stretch_not_a_clip_to_white(tmp_path):
    """`colorize(fits.getdata(...))` used to come back white: counts of 100-800 were clipped to 1."""
    from astropy.io import fits

    from galcolor.io.decode import read_image

    rng = np.random.default_rng(0)
    counts = (rng.normal(100, 5, (30, 40)) + 700 * np.exp(-((np.arange(40) - 20) ** 2) / 30)[None, :]).astype(">f4")
    fits.PrimaryHDU(counts).writeto(tmp_path / "field.fits")
    from_file = read_image(tmp_path / "field.fits").rgb
    grey = fits.getdata(tmp_path / "field.fits")  # big-endian, bottom row first, as astropy gives it
    np.testing.assert_allclose(as_rgb_float(grey[::-1]), from_file, atol=1e-6)
    assert from_file.max() > 0.9 and np.median(from_file[:, 20]) > 0.5 and np.median(from_file[:, :5]) < 0.2


def test_big_endian_arrays_read_like_native_ones():
    levels = np.arange(4096, dtype=np.uint16).reshape(64, 64)
    assert np.array_equal(as_rgb_float(levels.astype(">u2")), as_rgb_float(levels))
    assert np.array_equal(as_rgb_float((levels / 4095).astype(">f4")), as_rgb_float((levels / 4095).astype(np.float32)))


def test_a_model_path_is_accepted_and_bad_styles_and_shapes_are_galcolor_errors(tiny_model_path, model, galaxy):
    assert np.array_equal(colorize(galaxy, str(tiny_model_path)), colorize(galaxy, load_model(tiny_model_path)))
    for caution, saturation in ((float("nan"), 1.0), (1.0, float("nan")), (1.0, 100.0), (-1.0, 1.0)):
        with pytest.raises(GalcolorError):
            model.with_style(caution, saturation)
    with pytest.raises(GalcolorError, match=r"\(H, W, 3\)"):
        colorize_lab(np.zeros((8, 8), np.float32), model)


def test_colour_floats_beyond_0_1_are_refused_not_clipped():
    with pytest.raises(GalcolorError, match=r"\[0, 1\]"):
        as_rgb_float(np.full((4, 4, 3), 200.0, np.float32))


def test_load_model_from_a_path_needs_no_flags(tiny_model_path):
    loaded = load_model(str(tiny_model_path))
    assert isinstance(loaded, LoadedModel)
    assert loaded.source == tiny_model_path
    assert (loaded.config.arch, loaded.config.base_width, loaded.config.depth) == ("unet", 4, 2)
    assert not loaded.network.training, "a loaded model must be in eval mode"
    assert loaded.lut_ab is not None and tuple(loaded.lut_ab.shape) == (101, 2)
    assert next(loaded.network.parameters()).device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert load_model(tiny_model_path, device="cpu").config == loaded.config


def test_load_model_errors_are_galcolor_errors(tmp_path):
    text = tmp_path / "x.safetensors"
    text.write_text("hello")
    for path in (tmp_path / "missing.safetensors", text, tmp_path):
        with pytest.raises(GalcolorError, match=str(path.name)):
            load_model(path)


def test_default_model_is_the_shipped_one():
    if not shipped_model_path().exists():
        pytest.skip(f"the shipped model {shipped_model_path()} is not there yet (still being trained)")
    shipped = load_model()
    assert shipped.source == shipped_model_path()
    out = galcolor.colorize(np.zeros((37, 53), np.uint8))  # no model argument: the shipped one
    assert out.shape == (37, 53, 3) and out.dtype == np.uint8


def test_missing_shipped_model_raises_galcolor_error(monkeypatch, tmp_path):
    """An install that lost its weights file says which file is missing (simulated by pointing elsewhere)."""
    monkeypatch.setattr("galcolor.app.api.shipped_model_path", lambda: tmp_path / "galcolor-unet.safetensors")
    with pytest.raises(GalcolorError, match="galcolor-unet.safetensors"):
        load_model()
