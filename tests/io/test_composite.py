"""Band images to a colour PNG with astropy's make_lupton_rgb: channel order, bad pixels, real survey bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from galcolor.app.cli import main
from galcolor.errors import GalcolorError, InputError
from galcolor.io.composite import band_channels, lupton_composite, read_band, write_composite

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "multiband-fits"
CANDELS = DATA / "candels-goods-s"
SN_HOST = DATA / "sn2006bh-host" / "SN2006bh"
HSC = DATA / "hsc-cosmos"


def _galaxy(shape=(64, 64), centre=(32, 32), width=5.0, peak=100.0, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.indices(shape)
    blob = peak * np.exp(-((y - centre[0]) ** 2 + (x - centre[1]) ** 2) / (2 * width**2))
    return (10.0 + blob + rng.normal(0, noise, shape)).astype(np.float32)  # sky level 10


def _write_fits(path: Path, data) -> Path:
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32)).writeto(path)
    return path


def _gri(seed=0):
    """g r i bands of a galaxy with a 'red' blob (i only) top-left and a 'blue' blob (g only) bottom-right."""
    flat = [_galaxy(peak=0.0, seed=seed + k) for k in range(3)]
    g, r, i = flat
    y, x = np.indices(g.shape)
    red_spot = (y - 12) ** 2 + (x - 12) ** 2 < 25
    blue_spot = (y - 50) ** 2 + (x - 50) ** 2 < 25
    i[red_spot] += 200.0
    g[blue_spot] += 200.0
    return [g, r, i], red_spot, blue_spot


def test_gri_maps_reddest_band_to_red_and_bluest_to_blue():
    bands, red_spot, blue_spot = _gri()
    rgb = lupton_composite(bands)  # given as g, r, i
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 64, 3)
    red, blue = rgb[red_spot].mean(axis=0), rgb[blue_spot].mean(axis=0)
    assert red[0] > 150 and red[1] < 20 and red[2] < 20, red  # i -> R only
    assert blue[2] > 150 and blue[0] < 20 and blue[1] < 20, blue  # g -> B only
    assert np.median(rgb.max(axis=2)) < 30  # sky stays dark


@pytest.mark.parametrize("n, expected", [
    (2, ((1,), (0, 1), (0,))),
    (3, ((2,), (1,), (0,))),
    (4, ((2, 3), (1,), (0,))),  # g r i z: R = mean(i, z)
    (5, ((3, 4), (1, 2), (0,))),  # HSC g r i z y
])
def test_band_to_channel_mapping(n, expected):
    assert band_channels(n) == expected


def test_two_bands_make_green_their_mean():
    rgb = lupton_composite([_galaxy(), _galaxy(seed=1)])  # same galaxy in both: grey
    core = rgb[28:36, 28:36].astype(int)
    assert np.abs(core[..., 0] - core[..., 2]).max() < 25 and np.abs(core[..., 1] - core[..., 0]).max() < 25


@pytest.mark.parametrize("peak", [8.0, 1e4])  # sky sigma is 1
def test_default_stretch_shows_faint_galaxies_on_dark_sky_and_bright_ones_unburnt(peak):
    rgb = lupton_composite([_galaxy(peak=peak, width=4.0, seed=k) for k in range(3)])
    brightest = rgb.max(axis=2)
    radius = np.hypot(*(np.indices(brightest.shape) - 32))
    assert np.percentile(brightest[radius > 20], 90) < 40  # sky noise stays dark grain
    assert brightest[radius < 3].mean() > 50  # the galaxy shows
    assert (brightest[radius < 12] == 255).mean() < 0.02  # ... and is not burnt out
    assert brightest[(radius > 6) & (radius < 10)].mean() > 20


def test_nan_and_inf_pixels_give_finite_output_equal_elsewhere():
    clean = [_galaxy(seed=k, peak=50.0 * (k + 1)) for k in range(3)]
    clean[2][2, 20:30] += 300.0  # a red streak where g and r will be masked
    dirty = [b.copy() for b in clean]
    bad = np.zeros((64, 64), bool)
    bad[:6, :] = True  # masked edge
    bad[40, 10] = bad[5, 50] = True
    dirty[0][bad] = np.nan
    dirty[1][:6, :] = np.inf
    dirty[2][40, 10] = -np.inf
    fixed = {"minimum": 10.0, "stretch": 20.0}
    ref, out = lupton_composite(clean, **fixed), lupton_composite(dirty, **fixed)
    assert out.dtype == np.uint8 and out.shape == ref.shape
    np.testing.assert_array_equal(out[~bad], ref[~bad])  # the mapping is per pixel
    assert out[:6, :, 1:].max() == 0  # NaN in g and inf in r show as sky (black) in B and G
    assert out[2, 20:30, 0].min() > 100  # ... without blacking out the i band's red streak there
    ref, out = lupton_composite(clean), lupton_composite(dirty)  # sky and stretch estimated
    y, x = np.indices(bad.shape)
    galaxy = (y - 32) ** 2 + (x - 32) ** 2 < 100  # (sky noise near I = 0 may flip to black)
    assert np.abs(out[galaxy].astype(int) - ref[galaxy]).max() <= 2


def test_shape_mismatch_and_single_band_are_clear_errors():
    with pytest.raises(GalcolorError, match=r"64×64.*32×48"):
        lupton_composite([_galaxy(), _galaxy(shape=(32, 48))])
    with pytest.raises(GalcolorError, match="at least two bands"):
        lupton_composite([_galaxy()])
    with pytest.raises(GalcolorError, match="2 scale values for 3 bands"):
        lupton_composite(_gri()[0], scales=[1, 2])


def test_read_band_errors_name_the_file(tmp_path):
    text = tmp_path / "notes.fits"
    text.write_text("not a fits file\n")
    with pytest.raises(InputError, match=r"notes\.fits: not a FITS file") as err:
        read_band(text)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"missing\.fits: no such file"):
        read_band(tmp_path / "missing.fits")
    cube = _write_fits(tmp_path / "cube.fits", np.zeros((5, 50, 50)))
    with pytest.raises(InputError, match=r"cube\.fits: holds a 5×50×50 cube.*one band per file"):
        read_band(cube)
    truncated = tmp_path / "cut.fits"
    truncated.write_bytes(_write_fits(tmp_path / "whole.fits", _galaxy()).read_bytes()[:3500])
    with pytest.raises(InputError, match=r"cut\.fits: cannot read"):
        read_band(truncated)
    table = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column("a", "E", array=np.arange(3.0))])]).writeto(table)
    with pytest.raises(InputError, match="has no 2-D image"):
        read_band(table)


def test_read_band_finds_the_image_in_real_layouts(tmp_path):
    image = _galaxy()
    sdss_like = tmp_path / "frame.fits"  # image, then a 1-D array and a table (SDSS frames)
    fits.HDUList([fits.PrimaryHDU(image), fits.ImageHDU(np.ones(2048, np.float32)),
                  fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.ones(2))])]
                 ).writeto(sdss_like)
    fz = tmp_path / "band.fits.fz"  # tile-compressed: empty primary, CompImageHDU
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image, compression_type="GZIP_2")]).writeto(fz)
    gz = tmp_path / "band.fits.gz"
    fits.PrimaryHDU(image[None]).writeto(gz)  # 1×H×W is squeezed
    for path in (sdss_like, fz, gz):
        band = read_band(path)
        assert band.dtype == np.float32 and band.shape == image.shape
        np.testing.assert_allclose(band, image, atol=0.1)  # .fz quantises floats to ~sigma/16
    with pytest.raises(InputError, match="has no HDU 7"):
        read_band(sdss_like, hdu=7)


def test_write_composite_png_atomic_and_never_overwrites_inputs(tmp_path, monkeypatch):
    bands, _, _ = _gri()
    paths = [_write_fits(tmp_path / f"{b}.fits", d[:, :50]) for b, d in zip("gri", bands)]
    out = tmp_path / "galaxy.png"
    rgb = write_composite(paths, out)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "RGB" and im.size == (50, 64)  # W×H
        np.testing.assert_array_equal(np.asarray(im), rgb)
    # north up: FITS row 0 is the bottom line of the PNG
    np.testing.assert_array_equal(rgb, lupton_composite([b[:, :50] for b in bands])[::-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fits", "galaxy.png", "i.fits", "r.fits"]
    before = paths[2].read_bytes()
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_composite(paths, paths[2])
    assert paths[2].read_bytes() == before
    old_png = out.read_bytes()
    odd = _write_fits(tmp_path / "odd.fits", np.ones((10, 10)))
    with pytest.raises(GalcolorError, match=r"odd\.fits is 10×10 but .*g\.fits is 64×50"):
        write_composite([*paths[:2], odd], out)
    assert out.read_bytes() == old_png  # a failed run leaves the old output alone

    def disk_full(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(GalcolorError, match="galaxy.png: cannot write: No space left"):
        write_composite(paths, out)
    assert out.read_bytes() == old_png
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fits", "galaxy.png", "i.fits", "odd.fits", "r.fits"]  # no temporary file left


def test_cli_exit_codes_and_one_line_errors(tmp_path, capsys):
    paths = [str(_write_fits(tmp_path / f"{b}.fits", d)) for b, d in zip("gri", _gri()[0])]
    out = tmp_path / "c.png"
    assert main(["composite", *paths, "-o", str(out), "--q", "10", "--scales", "1", "1", "2"]) == 0
    assert out.exists() and "R=i.fits" in capsys.readouterr().out
    assert main(["composite", paths[0], str(tmp_path / "nope.fits"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("galcolor: ") and "nope.fits: no such file" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as usage:
        main(["composite", *paths])  # no -o
    assert usage.value.code == 2


def _looks_like_a_galaxy(rgb: np.ndarray) -> None:
    assert rgb.dtype == np.uint8 and np.isfinite(rgb).all()
    brightest = rgb.max(axis=2)
    galaxy = brightest > 30
    assert 0.01 < galaxy.mean() < 0.8, "all black or all lit"
    assert (brightest == 255).mean() < 0.01, "burnt out"
    assert 40 < np.median(brightest[galaxy]) < 200, "galaxy neither dim nor saturated"
    red, blue = (rgb[..., k][galaxy].astype(float) for k in (0, 2))
    assert np.abs(red - blue).mean() > 10, "no colour"


@pytest.mark.skipif(not CANDELS.is_dir(), reason=f"real data folder {CANDELS} missing")
def test_real_candels_vzh(tmp_path):
    stem = CANDELS / "GDS_deep2_10673"
    rgb = write_composite([f"{stem}_{b}.fits" for b in "vzh"], tmp_path / "candels.png")
    assert rgb.shape == (84, 84, 3)
    _looks_like_a_galaxy(rgb)


@pytest.mark.skipif(not SN_HOST.is_dir(), reason=f"real data folder {SN_HOST} missing")
def test_real_sdss_gri_host_has_a_redder_centre():
    bands = [read_band(SN_HOST / f"SDSS_{b}.fits") for b in "gri"]
    rgb = lupton_composite(bands)
    _looks_like_a_galaxy(rgb)
    total = sum(bands)
    cy, cx = np.unravel_index(np.argmax(total[100:140, 100:140]), (40, 40))
    radius = np.hypot(*(np.indices(total.shape) - np.array([cy + 100, cx + 100])[:, None, None]))
    rings = (radius < 3, (radius > 25) & (radius < 45))
    ratio = [rgb[..., 0][m].mean() / rgb[..., 2][m].mean() for m in rings]
    assert ratio[0] > ratio[1] * 1.1, ratio  # bulge redder than the disc


@pytest.mark.skipif(not HSC.is_dir(), reason=f"real data folder {HSC} missing")
def test_real_hsc_grizy_npz_and_cube_fits():
    with np.load(HSC / "hsc_cosmos_35.npz") as data:
        images = data["images"]
    assert images.shape[0] == 5
    rgb = lupton_composite(list(images))
    assert rgb.shape == (*images.shape[1:], 3)
    _looks_like_a_galaxy(rgb)
    with pytest.raises(InputError, match="5×50×50 cube"):
        read_band(HSC / "Cut_HSC.fits")
