"""Tests for galcolor.io: every case is a file a user could hand us, built in tmp_path."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from galcolor.errors import GalcolorError, InputError
from galcolor.io.decode import DEFAULT_MAX_PIXELS, FITS_STRETCH_HELP, DecodedImage, read_image
from galcolor.io.paths import IMAGE_SUFFIXES, find_inputs, is_image_path, output_path
from galcolor.io.atomic import PngRowWriter, atomic_output, atomic_write_bytes, atomic_write_text, write_png

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, raw_rows: bytes) -> bytes:
    """A minimal PNG written by hand, so headers can claim anything."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw_rows))
        + chunk(b"IEND", b"")
    )


def assert_valid(decoded: DecodedImage, shape: tuple[int, int]) -> None:
    assert isinstance(decoded, DecodedImage)
    assert decoded.rgb.shape == (*shape, 3)
    assert decoded.rgb.dtype == np.float32
    assert np.isfinite(decoded.rgb).all()
    assert decoded.rgb.min() >= 0 and decoded.rgb.max() <= 1


def assert_input_error(path: Path, match: str, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        read_image(path, **kwargs)
    message = str(info.value)
    assert message.startswith(str(path) + ": ")
    assert "\n" not in message
    assert match in message
    return info.value


def colour_pixels(h: int = 8, w: int = 12) -> np.ndarray:
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[..., 2] = 30
    return rgb


# --- Pillow formats ---------------------------------------------------------------------------


def test_rgb_png_values_and_colour(tmp_path):
    path = tmp_path / "c.png"
    Image.fromarray(colour_pixels()).save(path)
    decoded = read_image(path)
    assert_valid(decoded, (8, 12))
    assert decoded.is_colour and decoded.source == path and decoded.fits_header is None
    np.testing.assert_allclose(decoded.rgb[0, 0], [200 / 255, 0, 30 / 255], atol=1e-6)


def test_rgb_jpeg_is_colour(tmp_path):
    path = tmp_path / "c.jpg"
    Image.fromarray(colour_pixels(32, 32)).save(path, quality=95)
    decoded = read_image(path)
    assert_valid(decoded, (32, 32))
    assert decoded.is_colour
    assert abs(decoded.rgb[..., 0].mean() - 200 / 255) < 0.02


def test_grey_jpeg_saved_as_rgb_is_not_colour(tmp_path):
    path = tmp_path / "g.jpg"
    grey = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))
    Image.fromarray(np.stack([grey] * 3, axis=2)).convert("RGB").save(path, quality=90)
    decoded = read_image(path)
    assert_valid(decoded, (64, 64))
    assert not decoded.is_colour


def test_channels_differing_by_one_level_are_not_colour(tmp_path):
    rgb = np.full((4, 4, 3), 100, np.uint8)
    rgb[..., 1] = 101
    Image.fromarray(rgb).save(tmp_path / "a.png")
    rgb[0, 0, 2] = 98
    Image.fromarray(rgb).save(tmp_path / "b.png")
    assert not read_image(tmp_path / "a.png").is_colour
    assert read_image(tmp_path / "b.png").is_colour


def test_grey_png_8bit_channels_equal(tmp_path):
    path = tmp_path / "l.png"
    Image.fromarray(np.array([[0, 128, 255]], np.uint8), mode="L").save(path)
    decoded = read_image(path)
    assert_valid(decoded, (1, 3))
    assert not decoded.is_colour
    np.testing.assert_allclose(decoded.rgb[0, :, 1], [0, 128 / 255, 1.0], atol=1e-6)
    assert (decoded.rgb[..., 0] == decoded.rgb[..., 2]).all()


def test_grey_png_16bit_full_scale_is_one(tmp_path):
    path = tmp_path / "g16.png"
    Image.fromarray(np.array([[0, 65535, 32768]], np.uint16)).save(path)
    decoded = read_image(path)
    assert decoded.rgb[0, 1, 0] == 1.0
    assert decoded.rgb[0, 0, 0] == 0.0
    assert decoded.rgb[0, 2, 0] == pytest.approx(32768 / 65535)
    assert not decoded.is_colour


def test_rgb_png_16bit(tmp_path):
    rows = np.array([[[65535, 0, 0], [0, 65535, 32768]]], dtype=">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_bytes(2, 1, 16, 2, raw))
    decoded = read_image(path)
    np.testing.assert_allclose(decoded.rgb[0, 0], [1, 0, 0])
    assert decoded.is_colour


def test_rgba_alpha_composited_on_black(tmp_path):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, 0] = [255, 255, 255, 0]  # fully transparent white
    rgba[0, 1] = [255, 0, 0, 255]
    rgba[0, 2] = [200, 200, 200, 51]
    path = tmp_path / "a.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    rgb = read_image(path).rgb
    np.testing.assert_allclose(rgb[0, 0], [0, 0, 0])
    np.testing.assert_allclose(rgb[0, 1], [1, 0, 0])
    np.testing.assert_allclose(rgb[0, 2], [200 / 255 * 0.2] * 3, atol=1e-6)


def test_grey_alpha_la(tmp_path):
    la = np.array([[[255, 0], [255, 255]]], np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(path)
    decoded = read_image(path)
    np.testing.assert_allclose(decoded.rgb[0, :, 0], [0, 1])
    assert not decoded.is_colour


def test_palette_colours_and_transparency(tmp_path):
    img = Image.new("P", (3, 1))
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    img.putdata([0, 1, 2])
    img.save(tmp_path / "p.png")
    rgb = read_image(tmp_path / "p.png").rgb
    np.testing.assert_allclose(rgb[0], np.eye(3))

    img.info["transparency"] = 1
    img.save(tmp_path / "pt.png", transparency=1)
    rgb = read_image(tmp_path / "pt.png").rgb
    np.testing.assert_allclose(rgb[0], [[1, 0, 0], [0, 0, 0], [0, 0, 1]])


def test_one_bit_image(tmp_path):
    img = Image.new("1", (2, 1))
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "b.png")
    np.testing.assert_allclose(read_image(tmp_path / "b.png").rgb[0, :, 0], [0, 1])


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.array([[0, 255]], np.uint8), [0, 1]),
        (np.array([[0, 65535]], np.uint16), [0, 1]),
        (np.array([[[0, 0, 0], [255, 0, 0]]], np.uint8), [0, 1]),
    ],
    ids=["grey8", "grey16", "rgb8"],
)
def test_tiff(tmp_path, array, expected):
    path = tmp_path / "t.tif"
    Image.fromarray(array).save(path)
    np.testing.assert_allclose(read_image(path).rgb[0, :, 0], expected)


def test_int32_tiff_within_16_bit_range_is_display_levels(tmp_path):
    Image.fromarray(np.array([[0, 65535]], np.int32)).save(tmp_path / "small.tif")
    np.testing.assert_allclose(read_image(tmp_path / "small.tif").rgb[0, :, 0], [0, 1])


def test_float_tiff_within_0_1_is_display_levels(tmp_path):
    path = tmp_path / "f.tif"
    Image.fromarray(np.array([[0.0, 0.25, 1.0, np.nan]], np.float32)).save(path)
    np.testing.assert_allclose(read_image(path).rgb[0, :, 0], [0, 0.25, 1, 0])


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_linear_tiff_is_stretched_like_fits(tmp_path, dtype):
    """Counts exported as a 32-bit or float TIFF used to come out black (divided by 2**31) or white
    (clipped to 1): they are linear data, and get the FITS stretch."""
    from astropy.io import fits

    rng = np.random.default_rng(0)
    counts = (rng.normal(1000, 30, (40, 50)) + 190000 * np.exp(-((np.arange(50) - 25) ** 2) / 40)[None, :]).astype(dtype)
    if dtype == np.int32:
        counts[0, 0] = -40  # negative sky after subtraction, as archives give it
    Image.fromarray(counts).save(tmp_path / "counts.tif")
    fits.PrimaryHDU(counts[::-1]).writeto(tmp_path / "counts.fits")  # FITS row 1 is the bottom
    from_tiff = read_image(tmp_path / "counts.tif").rgb[..., 0]
    np.testing.assert_allclose(from_tiff, read_image(tmp_path / "counts.fits").rgb[..., 0], atol=1e-6)
    assert from_tiff.min() == 0.0 and from_tiff.max() > 0.9 and 0.05 < np.median(from_tiff[:, 20:30]) < 1


def test_float_tiff_without_finite_pixels_names_the_file(tmp_path):
    path = tmp_path / "nan.tif"
    Image.fromarray(np.full((4, 4), np.nan, np.float32)).save(path)
    assert_input_error(path, "has no finite pixels")


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)  # pure red ink mix
    decoded = read_image(path)
    assert_valid(decoded, (16, 16))
    r, g, b = decoded.rgb[8, 8]
    assert r > 0.9 and g < 0.1 and b < 0.1
    assert decoded.is_colour


def test_exif_orientation_applied(tmp_path):
    path = tmp_path / "rot.jpg"
    img = Image.fromarray(colour_pixels(10, 30))
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    img.save(path, exif=exif.tobytes())
    assert read_image(path).rgb.shape == (30, 10, 3)


def test_input_file_not_modified(tmp_path):
    path = tmp_path / "rot.jpg"
    img = Image.fromarray(colour_pixels(10, 30))
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(path, exif=exif.tobytes())
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    read_image(path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_content_sniffed_not_suffix(tmp_path):
    path = tmp_path / "really_a_png.jpg"
    Image.fromarray(colour_pixels()).save(path, format="PNG")
    assert read_image(path).is_colour


# --- bad files ----------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    assert_input_error(tmp_path / "nope.jpg", "no such file")
    (tmp_path / "f").write_text("x")
    assert_input_error(tmp_path / "f" / "child.jpg", "no such file")


def test_empty_file(tmp_path):
    (tmp_path / "e.jpg").write_bytes(b"")
    assert_input_error(tmp_path / "e.jpg", "empty file (0 bytes)")


def test_directory(tmp_path):
    (tmp_path / "d.jpg").mkdir()
    assert_input_error(tmp_path / "d.jpg", "folder")


def test_html_saved_as_jpg(tmp_path):
    (tmp_path / "page.jpg").write_text("<!DOCTYPE html>\n<html><body>Not found</body></html>\n")
    assert_input_error(tmp_path / "page.jpg", "not a readable image (unrecognised format)")


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("TIFF", ".tif")])
@pytest.mark.parametrize("keep", [0.5, 0.05])
def test_truncated_files_error(tmp_path, fmt, suffix, keep):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    full = tmp_path / ("full" + suffix)
    Image.fromarray(noise).save(full, format=fmt)
    data = full.read_bytes()
    cut = tmp_path / ("cut" + suffix)
    cut.write_bytes(data[: max(int(len(data) * keep), 12)])
    assert_input_error(cut, "truncated or corrupt image data")


def test_zero_size_dimension(tmp_path):
    path = tmp_path / "zero.png"
    path.write_bytes(png_bytes(0, 5, 8, 0, b""))
    assert_input_error(path, "zero-size dimension (0×5)")


def test_pixel_limit_refuses_huge_header_before_decoding(tmp_path):
    # 10^10 8-bit pixels would need 40 GB as float RGB; the file is tiny and only lies.
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(100_000, 100_000, 8, 0, b"\x00" * 10))
    err = assert_input_error(path, "100000×100000 = 10,000,000,000 pixels")
    assert "over the limit of 200,000,000 (--max-pixels)" in str(err)
    assert DEFAULT_MAX_PIXELS == 200_000_000


def test_pixel_limit_is_configurable(tmp_path):
    path = tmp_path / "c.png"
    Image.fromarray(colour_pixels(10, 10)).save(path)
    assert_input_error(path, "over the limit of 99", max_pixels=99)
    assert read_image(path, max_pixels=100).rgb.shape == (10, 10, 3)


def test_limit_above_pillows_own_bomb_limit(tmp_path):
    # Pillow alone refuses >179M pixels; the user's --max-pixels must win over it.
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(18_000, 10_000, 1, 0, b"\x00" * 10))  # 180M pixels, data absent
    pillow_limit = Image.MAX_IMAGE_PIXELS
    assert_input_error(path, "over the limit of 100", max_pixels=100)
    err = assert_input_error(path, "truncated or corrupt image data", max_pixels=300_000_000)
    assert "exceeds limit" not in str(err)  # got past Pillow's check to the (missing) pixel data
    assert Image.MAX_IMAGE_PIXELS == pillow_limit


# --- FITS ---------------------------------------------------------------------------------------


def write_fits(path: Path, *hdus) -> Path:
    fits.HDUList(list(hdus)).writeto(path)
    return path


def galaxy(h: int = 40, w: int = 50) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    rng = np.random.default_rng(1)
    blob = 1000 * np.exp(-((x - w / 2) ** 2 + (y - h / 2) ** 2) / 40)
    return (100 + blob + rng.normal(0, 2, (h, w))).astype(np.float32)


def test_fits_stretch_range_and_header(tmp_path):
    hdu = fits.PrimaryHDU(galaxy())
    hdu.header["OBJECT"] = "M51"
    decoded = read_image(write_fits(tmp_path / "g.fits", hdu))
    assert_valid(decoded, (40, 50))
    assert not decoded.is_colour
    assert decoded.fits_header["OBJECT"] == "M51"
    v = decoded.rgb[..., 0]
    assert (decoded.rgb[..., 1] == v).all()
    assert v[20, 25] > 0.9  # the galaxy core is bright
    assert np.median(v) < 0.1  # the sky is dark
    assert v.max() == pytest.approx(1.0)


def test_fits_nan_pixels_black(tmp_path):
    data = galaxy()
    data[20, 25] = np.nan
    data[0, :] = np.inf
    decoded = read_image(write_fits(tmp_path / "n.fits", fits.PrimaryHDU(data)))
    assert_valid(decoded, (40, 50))
    flipped = decoded.rgb[::-1, :, 0]  # back to FITS row order
    assert flipped[20, 25] == 0
    assert (flipped[0, :] == 0).all()


def test_fits_rows_flipped_to_display_orientation(tmp_path):
    data = np.zeros((4, 3), np.float32)
    data[0, 0] = 10  # FITS pixel (1, 1): bottom-left when displayed
    rgb = read_image(write_fits(tmp_path / "o.fits", fits.PrimaryHDU(data))).rgb
    assert rgb[-1, 0, 0] == 1 and rgb[0, 0, 0] == 0


def test_fits_cube_uses_first_plane(tmp_path):
    cube = np.zeros((3, 10, 12), np.float32)
    cube[0, 2, 3] = 50  # only the first plane has this star
    cube[1] = np.random.default_rng(0).random((10, 12))
    rgb = read_image(write_fits(tmp_path / "cube.fits", fits.PrimaryHDU(cube))).rgb
    assert rgb.shape == (10, 12, 3)
    flipped = rgb[::-1, :, 0]
    assert flipped[2, 3] == 1 and np.count_nonzero(flipped) == 1


def test_fits_4d_cube(tmp_path):
    cube = np.zeros((2, 1, 6, 7), np.float32)
    cube[0, 0, 1, 1] = 5
    assert read_image(write_fits(tmp_path / "c4.fits", fits.PrimaryHDU(cube))).rgb.shape == (6, 7, 3)


def test_fits_int16_with_bzero(tmp_path):
    # Unsigned 16-bit data stored as int16 + BZERO=32768: raw -32768 means 0 counts.
    data = np.full((8, 8), 1000, np.uint16)
    data[3, 4] = 60000
    path = write_fits(tmp_path / "u16.fits", fits.PrimaryHDU(data))
    header = fits.getheader(path)
    assert header["BITPIX"] == 16 and header["BZERO"] == 32768
    decoded = read_image(path)
    flipped = decoded.rgb[::-1, :, 0]
    assert flipped[3, 4] == pytest.approx(1.0)
    assert np.count_nonzero(flipped) == 1  # sky at 1000 → 0, not wrapped negative values


def test_fits_image_in_extension_and_compressed(tmp_path):
    path = write_fits(tmp_path / "c.fits", fits.PrimaryHDU(), fits.CompImageHDU(galaxy()))
    decoded = read_image(path)
    assert_valid(decoded, (40, 50))
    assert decoded.fits_header["NAXIS1"] == 50


def test_fits_gz(tmp_path):
    plain = write_fits(tmp_path / "g.fits", fits.PrimaryHDU(galaxy()))
    gz = tmp_path / "g.fits.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    np.testing.assert_array_equal(read_image(gz).rgb, read_image(plain).rgb)


def test_fits_taller_than_a_band_is_stretched_as_one_frame(tmp_path):
    """Frames are read and stretched band by band of rows (memory-mapped where possible); the
    sky level and the percentile still come from the whole frame."""
    from astropy.visualization import AsinhStretch, ManualInterval

    rng = np.random.default_rng(2)
    data = (100 + rng.gamma(2.0, 3.0, (1300, 60)) + 2000 * (np.arange(1300) > 1200)[:, None]).astype(np.float32)
    data[5, 5], data[700, 10], data[1299, 0] = np.nan, np.inf, -np.inf
    decoded = read_image(write_fits(tmp_path / "tall.fits", fits.PrimaryHDU(data)))
    finite = np.isfinite(data)
    values = data[finite]
    sky = np.median(values)
    top = np.percentile(values, 99.9) - sky
    expected = np.zeros(data.shape, np.float32)
    stretch = AsinhStretch(a=0.1) + ManualInterval(0.0, top)
    expected[finite] = stretch(values - sky, clip=True) / stretch(np.array([top], np.float32), clip=True)[0]  # the top is white
    np.testing.assert_array_equal(decoded.rgb[::-1, :, 0], np.clip(np.nan_to_num(expected, nan=0.0), 0.0, 1.0))
    assert decoded.pixels.ndim == 2  # one grey plane kept, three channels only on demand


def test_decoded_pixels_stay_as_decoded_and_bands_match_the_whole(tmp_path):
    rgb8 = np.random.default_rng(3).integers(0, 256, (37, 29, 3), dtype=np.uint8)
    Image.fromarray(rgb8).save(tmp_path / "c.png")
    Image.fromarray(rgb8[..., 1]).save(tmp_path / "g.png")
    Image.fromarray((rgb8[..., 0].astype(np.uint16) * 257)).save(tmp_path / "g16.png")
    for name, dtype, ndim in (("c.png", np.uint8, 3), ("g.png", np.uint8, 2), ("g16.png", np.uint16, 2)):
        decoded = read_image(tmp_path / name)
        assert decoded.pixels.dtype == dtype and decoded.pixels.ndim == ndim and decoded.shape == (37, 29)
        assert_valid(decoded, (37, 29))
        for top, bottom in ((0, 37), (0, 1), (5, 22), (36, 37)):
            np.testing.assert_array_equal(decoded.rgb_rows(top, bottom), decoded.rgb[top:bottom])
    np.testing.assert_array_equal(read_image(tmp_path / "c.png").rgb, rgb8 / np.float32(255))


def test_fits_with_no_signal_is_refused_with_its_reason(tmp_path):
    """A constant, all-zero or all-negative frame was an all-black PNG reported as coloured (#30)."""
    assert_input_error(write_fits(tmp_path / "k.fits", fits.PrimaryHDU(np.full((5, 5), 7.0))), "every finite pixel is 7 (a blank frame)")
    assert_input_error(write_fits(tmp_path / "z.fits", fits.PrimaryHDU(np.zeros((64, 64), np.float32))), "every finite pixel is 0")
    magnitudes = -2.5 * np.log10(galaxy(64, 64))  # counts above 1: every value negative, the galaxy the most
    assert_input_error(write_fits(tmp_path / "m.fits", fits.PrimaryHDU(magnitudes)), "no pixel is above 0")
    on_sky = np.where(galaxy(64, 64) > 150, magnitudes, 0.0).astype(np.float32)  # a magnitude map on a zero sky
    assert_input_error(write_fits(tmp_path / "s.fits", fits.PrimaryHDU(on_sky)), "image has no signal")


def test_fits_sparse_stars_still_visible(tmp_path):
    data = np.zeros((100, 100), np.float32)
    data[10, 10] = 3  # one star in 10,000 pixels: the 99.9th percentile is the sky
    rgb = read_image(write_fits(tmp_path / "s.fits", fits.PrimaryHDU(data))).rgb
    assert rgb.max() == 1 and np.count_nonzero(rgb[..., 0]) == 1


def test_fits_without_image_data(tmp_path):
    path = write_fits(
        tmp_path / "t.fits", fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])
    )
    assert_input_error(path, "FITS file has no image data")
    path = write_fits(tmp_path / "1d.fits", fits.PrimaryHDU(np.arange(10.0)))
    assert_input_error(path, "FITS file has no image data")


def test_fits_all_nan(tmp_path):
    path = write_fits(tmp_path / "nan.fits", fits.PrimaryHDU(np.full((4, 4), np.nan, np.float32)))
    assert_input_error(path, "image has no finite pixels")


def test_fits_pixel_limit_from_header(tmp_path):
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = 100_000
    header["NAXIS2"] = 100_000
    path = tmp_path / "bomb.fits"
    path.write_bytes(header.tostring().encode("ascii"))  # header only: the 40 GB of data are absent
    assert_input_error(path, "100000×100000 = 10,000,000,000 pixels, over the limit of 200,000,000")


def test_fits_truncated(tmp_path):
    path = write_fits(tmp_path / "g.fits", fits.PrimaryHDU(galaxy(200, 200)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_input_error(path, "truncated or corrupt FITS data")


def test_fits_stretch_help_describes_it():
    for words in ("median", "99.9", "asinh", "NaN"):
        assert words in FITS_STRETCH_HELP


# --- random bytes -------------------------------------------------------------------------------

MAGIC_PREFIXES = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"II*\x00", b"SIMPLE  =                    T"]


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about corrupt EXIF before failing
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from(MAGIC_PREFIXES),
    body=st.binary(min_size=0, max_size=3000),
    suffix=st.sampled_from([".png", ".jpg", ".fits"]),
)
def test_random_bytes_never_crash(tmp_path, prefix, body, suffix):
    path = tmp_path / ("random" + suffix)
    path.write_bytes(prefix + body)
    try:
        decoded = read_image(path, max_pixels=10_000_000)
    except InputError as err:
        assert str(err).startswith(str(path)) and "\n" not in str(err)
    else:
        assert decoded.rgb.ndim == 3 and decoded.rgb.shape[2] == 3
        assert np.isfinite(decoded.rgb).all() and decoded.rgb.min() >= 0 and decoded.rgb.max() <= 1


def test_real_sdss_jpeg():
    folder = SHARED_DATA / "sdss-gz2" / "spirals"
    files = sorted(folder.glob("*.jpg"))[:1] if folder.is_dir() else []
    if not files:
        pytest.skip(f"real SDSS data not found at {folder}")
    decoded = read_image(files[0])
    assert_valid(decoded, (256, 256))
    assert decoded.is_colour


# --- finding inputs -----------------------------------------------------------------------------


def touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_is_image_path():
    assert is_image_path("a.JPG") and is_image_path("x/b.fits.gz") and is_image_path("c.Fit.GZ")
    assert not is_image_path("a.gz") and not is_image_path("notes.txt") and not is_image_path(".png")
    assert ".fits.gz" in IMAGE_SUFFIXES and all(s == s.lower() for s in IMAGE_SUFFIXES)


def test_find_inputs_folder(tmp_path):
    root = tmp_path / "in"
    touch(root / "a.jpg")
    touch(root / "sub" / "b.PNG")
    touch(root / "sub" / "deep" / "c.fits.gz")
    touch(root / "galaxie spirale é.tif")
    touch(root / ".hidden.jpg")
    touch(root / ".cache" / "d.jpg")
    touch(root / "notes.txt")
    found, missing = find_inputs([root])
    assert missing == []
    assert [rel for _, rel in found] == [
        PurePosixPath("a"),
        PurePosixPath("galaxie spirale é"),
        PurePosixPath("sub/b"),
        PurePosixPath("sub/deep/c"),
    ]
    assert found[3][0] == root / "sub" / "deep" / "c.fits.gz"


def test_find_inputs_reads_every_format_it_decodes(tmp_path):
    root = tmp_path / "in"
    for name in ("a.bmp", "b.gif", "c.WEBP", "d.fits.fz", "e.fz"):
        touch(root / name)
    found, _ = find_inputs([root])
    assert [rel.as_posix() for _, rel in found] == ["a", "b", "c", "d", "e"]


def test_find_inputs_skips_an_output_folder_inside_the_input_folder(tmp_path):
    root = tmp_path / "in"
    touch(root / "a.jpg")
    touch(root / "col" / "a.png")  # an earlier run's output
    touch(root / "sub" / "b.jpg")
    found, _ = find_inputs([root], out_dir=root / "col")
    assert [rel.as_posix() for _, rel in found] == ["a", "sub/b"]
    found, _ = find_inputs([root], out_dir=root)  # outputs beside the inputs: the folder itself is still searched
    assert [rel.as_posix() for _, rel in found] == ["a", "col/a", "sub/b"]


def test_find_inputs_files_and_missing(tmp_path):
    odd = touch(tmp_path / "image.dat")
    gz = touch(tmp_path / "m51.fits.gz")
    found, missing = find_inputs([str(odd), gz, tmp_path / "gone.jpg"])
    assert sorted(found) == sorted([(odd, PurePosixPath("image")), (gz, PurePosixPath("m51"))])
    assert missing == [tmp_path / "gone.jpg"]


def test_find_inputs_symlinks(tmp_path):
    root = tmp_path / "in"
    target = touch(root / "a.jpg")
    os.symlink(target, root / "b.jpg")
    os.symlink(tmp_path / "nowhere.jpg", root / "broken.jpg")
    outside = touch(tmp_path / "elsewhere" / "z.png")
    os.symlink(outside, root / "link.png")
    found, _ = find_inputs([root, target])
    assert sorted(rel.as_posix() for _, rel in found) == ["a", "link"]
    _, missing = find_inputs([root / "broken.jpg"])
    assert missing == [root / "broken.jpg"]


def test_find_inputs_follows_symlinked_files_and_folders_and_names_what_it_skips(tmp_path):
    """A linked folder was never searched, and a link to another input vanished from the counts (#30)."""
    root = tmp_path / "in"
    touch(root / "a.jpg")
    os.symlink(root / "a.jpg", root / "0-alias.jpg")  # sorts first; the file keeps its own name
    touch(root / "real" / "c.png")
    os.symlink(root / "real", root / "also-real")  # a folder searched already
    os.symlink(root, root / "real" / "loop")  # a loop
    touch(tmp_path / "elsewhere" / "d.fits")
    os.symlink(tmp_path / "elsewhere", root / "linked")  # a folder outside: searched through the link
    os.symlink(tmp_path / "gone", root / "gone-folder")
    os.symlink(tmp_path / "gone.png", root / "gone.png")
    skipped = []
    found, missing = find_inputs([root], skipped=skipped)
    assert [rel.as_posix() for _, rel in found] == ["a", "linked/d", "real/c"] and missing == []
    assert found[1][0] == root / "linked" / "d.fits"
    reasons = {path.name: why for path, why in skipped}
    assert set(reasons) == {"0-alias.jpg", "also-real", "loop", "gone-folder", "gone.png"}
    assert "already an input as" in reasons["0-alias.jpg"] and str(root / "a.jpg") in reasons["0-alias.jpg"]
    assert "already searched" in reasons["also-real"] and "a loop" in reasons["loop"]
    assert "does not exist" in reasons["gone.png"] and "does not exist" in reasons["gone-folder"]
    assert all(why.startswith(str(path) + ": ") and "\n" not in why for path, why in skipped)


# --- output paths and writing -------------------------------------------------------------------


def test_output_path(tmp_path):
    assert output_path(tmp_path, PurePosixPath("sub/a")) == tmp_path / "sub" / "a.png"
    assert output_path(tmp_path, PurePosixPath("a b é"), ".json") == tmp_path / "a b é.json"


@pytest.mark.parametrize("bad", ["../x", "sub/../../x", "/etc/x", "", "."])
def test_output_path_refuses_escape(tmp_path, bad):
    with pytest.raises(GalcolorError):
        output_path(tmp_path, PurePosixPath(bad))


def test_write_png_roundtrip_no_temp_left(tmp_path):
    rgb = colour_pixels()
    dest = tmp_path / "new" / "deeper" / "out.png"
    write_png(dest, rgb)
    np.testing.assert_array_equal(np.asarray(Image.open(dest)), rgb)
    assert os.listdir(dest.parent) == ["out.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask

    grey = rgb[..., 0]
    write_png(dest, grey)  # overwrites
    np.testing.assert_array_equal(np.asarray(Image.open(dest)), grey)
    assert os.listdir(dest.parent) == ["out.png"]


def test_write_png_rejects_wrong_dtype(tmp_path):
    with pytest.raises(ValueError):
        write_png(tmp_path / "x.png", np.zeros((2, 2, 3), np.float32))


def test_failed_write_leaves_destination_untouched(tmp_path):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"previous result")
    with pytest.raises(RuntimeError):
        with atomic_output(dest) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".tmp-") and tmp.suffix == ".png"
            tmp.write_bytes(b"half")
            raise RuntimeError("writer crashed")
    assert dest.read_bytes() == b"previous result"
    assert os.listdir(tmp_path) == ["out.png"]

    fresh = tmp_path / "fresh.png"
    with pytest.raises(RuntimeError):
        with atomic_output(fresh) as tmp:
            raise RuntimeError("crash before writing")
    assert not fresh.exists()
    assert os.listdir(tmp_path) == ["out.png"]


def test_temp_keeps_compound_suffix(tmp_path):
    with atomic_output(tmp_path / "x.fits.gz") as tmp:
        assert tmp.name.endswith(".fits.gz")
        tmp.write_bytes(b"data")
    assert (tmp_path / "x.fits.gz").read_bytes() == b"data"


def test_unwritable_destination(tmp_path):
    blocker = touch(tmp_path / "afile")
    dest = blocker / "sub" / "out.png"
    with pytest.raises(GalcolorError) as info:
        write_png(dest, colour_pixels())
    message = str(info.value)
    assert message.startswith(str(dest)) and "\n" not in message
    assert "is a file, not a folder" in message
    assert os.listdir(tmp_path) == ["afile"]


def test_os_error_while_writing_becomes_galcolor_error(tmp_path):
    dest = tmp_path / "out.txt"
    with pytest.raises(GalcolorError, match="cannot write"):
        with atomic_output(dest):
            raise OSError(28, "No space left on device")
    assert os.listdir(tmp_path) == []


def test_atomic_write_text_and_bytes(tmp_path):
    atomic_write_text(tmp_path / "a" / "r.json", "{\"é\": 1}\n")
    assert (tmp_path / "a" / "r.json").read_text(encoding="utf-8") == "{\"é\": 1}\n"
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(os.listdir(tmp_path)) == ["a", "b.bin"]


@pytest.mark.parametrize("shape, bands", [((1, 1, 3), [1]), ((70, 33, 3), [1, 63, 6]), ((130, 9), [130]), ((65, 4, 3), [64, 1])])
def test_png_row_writer_writes_exactly_the_rows_given(tmp_path, shape, bands):
    rng = np.random.default_rng(len(shape) + shape[0])
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    pixels[: shape[0] // 2] //= 16  # smooth and noisy rows, so different filters win
    for level in (0, 3, 9):
        dest = tmp_path / f"rows{level}.png"
        with atomic_output(dest) as tmp, open(tmp, "wb") as file:
            writer = PngRowWriter(file, shape[1], shape[0], 3 if len(shape) == 3 else 1, compress_level=level)
            top = 0
            for rows in bands:
                writer.write(pixels[top : top + rows])
                top += rows
            writer.close()
        with Image.open(dest) as image:
            image.load()
            np.testing.assert_array_equal(np.asarray(image), pixels)


def test_png_row_writer_refuses_rows_that_do_not_fit_the_header(tmp_path):
    with open(tmp_path / "x.png", "wb") as file:
        writer = PngRowWriter(file, 4, 2)
        with pytest.raises(ValueError):
            writer.write(np.zeros((1, 5, 3), np.uint8))
        with pytest.raises(ValueError):
            writer.write(np.zeros((3, 4, 3), np.uint8))
        writer.write(np.zeros((1, 4, 3), np.uint8))
        with pytest.raises(ValueError):
            writer.close()  # a row short
