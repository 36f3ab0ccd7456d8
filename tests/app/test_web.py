"""The web app: its colour function called directly, and a real headless Chromium driving the page.

The browser test needs Debian's chromium (/usr/bin/chromium, `apt-get install chromium`) and the
`playwright` Python package; it never downloads a browser. It skips with the reason when either is missing,
or fails instead when GALCOLOR_REQUIRE_BROWSER=1 (CI sets it, so the test cannot silently stop running).
"""

from __future__ import annotations

import io
import os
import re
import socket
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REQUIRE_BROWSER = os.environ.get("GALCOLOR_REQUIRE_BROWSER") == "1"


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (GALCOLOR_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    import gradio as gr
except ImportError:
    _skip_or_fail("the web app needs gradio: pip install 'galcolor[web]'")

from galcolor.app import web  # noqa: E402  (after the skip: web imports gradio)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-proxy-server",
]
TIMEOUT_MS = 90_000  # the machine may be busy training; a tiny model colours a 424 px galaxy in well under a second


@pytest.fixture(scope="module")
def galaxy_jpeg(sdss_dir: Path) -> Path:
    return sorted((sdss_dir / "spirals").glob("*.jpg"))[0]


@pytest.fixture
def colorizer(tiny_model_path: Path, tmp_path: Path) -> web.Colorizer:
    return web.Colorizer(web.model_choices(tiny_model_path), output_root=tmp_path / "results")


def _chroma(rgb8: np.ndarray) -> float:
    """Mean ab length over the galaxy (true L > 15) of an 8-bit colouring."""
    from galcolor.color.lab import rgb_array_to_lab

    lab = rgb_array_to_lab(rgb8[..., :3] / 255.0)
    return float(np.linalg.norm(lab[..., 1:], axis=2)[lab[..., 0] > 15].mean())


def _message(err: pytest.ExceptionInfo) -> str:
    return err.value.message


def test_grey_upload_gives_a_colour_png_of_the_same_size(colorizer, galaxy_jpeg: Path, tmp_path: Path) -> None:
    with Image.open(galaxy_jpeg) as im:
        grey_upload = tmp_path / "galaxy grey.png"
        im.convert("L").save(grey_upload)
        width, height = im.size

    grey_path, colour_path, download_path, uncertainty_map, status = colorizer(str(grey_upload), "launch")
    grey = np.asarray(Image.open(grey_path))
    assert uncertainty_map is None and "has none" in status  # the tiny model regresses, with no error head

    assert grey.shape == (height, width, 3) and grey.dtype == np.uint8
    assert colour_path == download_path
    png = Path(download_path)
    assert png.name == "galaxy grey.colorized.png"
    assert png.is_relative_to(tmp_path / "results")  # written only under the app's temp folder
    with Image.open(png) as result:
        assert result.format == "PNG" and result.mode == "RGB" and result.size == (width, height)
        colour = np.asarray(result)
    assert np.abs(colour.astype(int) - grey.astype(int)).max() > 0  # it was coloured, not copied
    assert "galaxy grey\\.png" in status and f"{width}×{height}" in status  # Markdown-escaped name


def test_a_fits_upload_is_coloured(colorizer, tmp_path: Path) -> None:
    from astropy.io import fits

    yy, xx = np.mgrid[:40, :60]
    sky = np.exp(-((xx - 30.0) ** 2 + (yy - 20.0) ** 2) / 50.0).astype(np.float32) * 1000 + 10
    path = tmp_path / "frame.fits"
    fits.PrimaryHDU(sky).writeto(path)

    grey_path, colour_path, _, _, _ = colorizer(str(path), "launch")
    grey = np.asarray(Image.open(grey_path))

    assert grey.shape == (40, 60, 3)
    with Image.open(colour_path) as result:
        assert result.size == (60, 40)


def test_a_text_file_named_png_gives_a_one_line_error_naming_the_file(colorizer, tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("these are my observing notes, not an image\n" * 20)

    with pytest.raises(gr.Error) as err:
        colorizer(str(bad), "launch")

    message = _message(err)
    assert message.startswith("notes.png: ") and "not a readable image" in message
    assert "\n" not in message and str(tmp_path) not in message  # the temp path means nothing to the user
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.png"))


def _refusal(galaxy_jpeg: Path, colorizer: web.Colorizer) -> str:
    with pytest.raises(gr.Error) as err:
        colorizer(str(galaxy_jpeg), "launch")
    message = _message(err)
    assert message.startswith(f"{galaxy_jpeg.name}: ") and "\n" not in message
    return message


def test_an_upload_over_the_limit_is_refused_with_a_clear_message(tiny_model_path: Path, galaxy_jpeg: Path, tmp_path: Path) -> None:
    message = _refusal(galaxy_jpeg, web.Colorizer(web.model_choices(tiny_model_path), max_upload_bytes=1_000, output_root=tmp_path))
    assert "file is " in message and "over this server's upload limit of 0.001 MB" in message
    # Gradio refuses it even earlier, at upload, with the same limit.
    assert web.launch_options("127.0.0.1", 7860, 1_000)["max_file_size"] == 1_000


def test_an_image_over_the_pixel_limit_names_the_servers_limit_not_a_cli_flag(tiny_model_path: Path, galaxy_jpeg: Path, tmp_path: Path) -> None:
    message = _refusal(galaxy_jpeg, web.Colorizer(web.model_choices(tiny_model_path), max_pixels=1_000, output_root=tmp_path))
    assert "image is 256×256" in message and "this server's limit" in message and "--max-pixels" not in message


def test_no_upload_and_an_unknown_model_are_refused(colorizer, galaxy_jpeg: Path) -> None:
    with pytest.raises(gr.Error, match="Choose an image file first"):
        colorizer(None, "launch")
    with pytest.raises(gr.Error, match="unknown model 'elsewhere'"):
        colorizer(str(galaxy_jpeg), "elsewhere")  # the dropdown's keys are the only models the client can pick


def test_build_app_refuses_a_missing_model_and_defaults_are_local(tmp_path: Path) -> None:
    from galcolor.errors import GalcolorError

    with pytest.raises(GalcolorError, match="no such model file"):
        web.build_app(tmp_path / "missing.safetensors")
    options = web.launch_options(web.DEFAULT_HOST, 7860, 50_000_000)
    assert options["server_name"] == "127.0.0.1" and options["share"] is False and options["ssr_mode"] is False
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


# ---- what decided the colour, colour hints, and controls shown only where they act -------------


def _plain(status: str) -> str:
    """The status as the page shows it (without Markdown's escapes)."""
    return re.sub(r"\\(.)", r"\1", status)


@pytest.fixture(scope="module")
def small_grey_galaxy(galaxy_jpeg: Path, tmp_path_factory) -> Path:
    """A 64 px grey crop of the galaxy's centre: a fast upload."""
    path = tmp_path_factory.mktemp("small") / "small galaxy.png"
    with Image.open(galaxy_jpeg) as image:
        left, top = (image.width - 64) // 2, (image.height - 64) // 2
        image.convert("L").crop((left, top, left + 64, top + 64)).save(path)
    return path


def _mean_b_over_the_galaxy(png: str) -> float:
    """Mean b* over the bright pixels (L > 15) of a colouring."""
    from galcolor.color.lab import rgb_array_to_lab

    lab = rgb_array_to_lab(np.asarray(Image.open(png).convert("RGB")) / 255.0)
    return float(lab[..., 2][lab[..., 0] > 15].mean())


def _blob(path: Path, rgb: tuple[float, float, float] | None) -> Path:
    """A 48 px Gaussian galaxy in colour `rgb` (None: grey) on a black sky."""
    yy, xx = np.mgrid[:48, :48]
    light = np.exp(-((xx - 24.0) ** 2 + (yy - 24.0) ** 2) / 120.0)[..., None]
    colour = np.ones(3) if rgb is None else np.asarray(rgb)
    Image.fromarray((255 * light * colour).astype(np.uint8)).save(path)
    return path


def test_a_galaxy_colour_hint_moves_the_colour_and_the_status_says_so(colorizer, small_grey_galaxy: Path) -> None:
    _, blue_png, _, _, blue_status = colorizer(str(small_grey_galaxy), "launch", 0.0, "auto", "auto", "0, -20")
    _, red_png, _, _, _ = colorizer(str(small_grey_galaxy), "launch", 0.0, "auto", "auto", "20,20")
    _, own_png, _, _, own_status = colorizer(str(small_grey_galaxy), "launch")

    blue, red = _mean_b_over_the_galaxy(blue_png), _mean_b_over_the_galaxy(red_png)
    assert blue < -10 < 10 < red, (blue, red)
    assert "Galaxy colour a* +0.0 b* -20.0 from your hint." in _plain(blue_status)
    assert "hint" not in own_status and abs(_mean_b_over_the_galaxy(own_png) - blue) > 10


def test_a_colour_reference_image_gives_its_galaxys_colour(colorizer, small_grey_galaxy: Path, tmp_path: Path) -> None:
    blue_reference = _blob(tmp_path / "same galaxy, blue.png", (0.55, 0.7, 1.0))
    red_reference = _blob(tmp_path / "same galaxy, red.png", (1.0, 0.6, 0.45))

    _, blue_png, _, _, status = colorizer(str(small_grey_galaxy), "launch", 0.0, "auto", "auto", "", str(blue_reference))
    _, red_png, _, _, _ = colorizer(str(small_grey_galaxy), "launch", 0.0, "auto", "auto", "", str(red_reference))

    assert _mean_b_over_the_galaxy(blue_png) + 10 < _mean_b_over_the_galaxy(red_png)
    assert "from your hint" in _plain(status)


def test_a_bad_hint_is_one_line_in_the_page_never_a_traceback(colorizer, small_grey_galaxy: Path, tmp_path: Path) -> None:
    grey_reference = _blob(tmp_path / "grey reference.png", None)
    notes = tmp_path / "notes.jpg"
    notes.write_text("not an image\n")
    colour_reference = _blob(tmp_path / "reference.png", (0.5, 0.7, 1.0))

    def refusal(galaxy_colour: str, reference: Path | None) -> str:
        with pytest.raises(gr.Error) as err:
            colorizer(str(small_grey_galaxy), "launch", 0.0, "auto", "auto", galaxy_colour, str(reference) if reference else None)
        message = _message(err)
        assert "\n" not in message and "Traceback" not in message and str(tmp_path) not in message, message
        return message

    assert refusal("", grey_reference).startswith("colour reference grey reference.png: a grey image")
    assert refusal("", notes).startswith("colour reference notes.jpg: not a readable image")
    assert "give the mean a* and b* as two numbers" in refusal("blue-ish", None)
    assert "within ±60" in refusal("99, 0", None)
    assert "not both" in refusal("1, 2", colour_reference)


def test_the_status_names_the_survey_and_a_named_survey_is_not_faded_by_caution(tmp_path: Path) -> None:
    from skimage.data import hubble_deep_field

    shipped = web.Colorizer(web.model_choices(None), output_root=tmp_path / "results")
    deep_field = tmp_path / "deep field.png"
    Image.fromarray(hubble_deep_field()).convert("L").resize((436, 500)).save(deep_field)

    *_, auto_status = shipped(str(deep_field), web.SHIPPED_KEY)
    _, named_png, _, _, named_status = shipped(str(deep_field), web.SHIPPED_KEY, 0.0, "auto", "sdss")

    # The Hubble Deep Field is unlike every survey the shipped model learnt: by default caution fades it ...
    assert "Survey auto: it looks most like " in auto_status and "by caution" in _plain(auto_status), auto_status
    # ... but a survey the user names is their decision, as in `colorize --survey`.
    assert "Coloured as sdss renders galaxies." in _plain(named_status) and "caution" not in named_status, named_status
    assert _chroma(np.asarray(Image.open(named_png).convert("RGB"))) > 2


def _component(demo, elem_id: str):
    return next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == elem_id)


def test_controls_that_do_nothing_for_the_model_are_hidden(tiny_model_path: Path, tiny_classifier_path: Path, tmp_path: Path) -> None:
    demo = web.build_app(None)  # the shipped model: a regression model trained on three surveys
    assert _component(demo, "galcolor-temperature").visible is False
    assert _component(demo, "galcolor-survey").visible is True

    both = web.Colorizer(web.model_choices(tiny_classifier_path), output_root=tmp_path)
    temperature, survey = both.controls("launch", "sdss")  # a classifier of no named surveys
    assert temperature["visible"] is True and survey["visible"] is False and survey["value"] == "auto"
    temperature, survey = both.controls(web.SHIPPED_KEY, "sdss")
    assert temperature["visible"] is False and survey["visible"] is True and survey["value"] == "sdss"
    regressor = web.Colorizer(web.model_choices(tiny_model_path), output_root=tmp_path)
    assert regressor.controls("launch")[0]["visible"] is False


def test_example_galaxies_are_the_demo_folders_images_when_it_exists(galaxy_jpeg: Path, tmp_path: Path, monkeypatch) -> None:
    import shutil

    folder = tmp_path / "demo_galaxies"
    assert web.example_galaxies(folder) == []  # no folder: no examples, no error
    folder.mkdir()
    assert web.example_galaxies(folder) == []
    shutil.copy(galaxy_jpeg, folder / "sdss-J022845.39-082736.7.jpg")
    _blob(folder / "hubble_elliptical.png", (1.0, 0.8, 0.6))
    (folder / "CREDITS.md").write_text("where these come from\n")
    assert [path.name for path in web.example_galaxies(folder)] == ["hubble_elliptical.png", "sdss-J022845.39-082736.7.jpg"]

    monkeypatch.setattr(web, "DEMO_GALAXIES", folder)
    demo = web.build_app(None)
    dataset = next(block for block in demo.blocks.values() if isinstance(block, gr.Dataset))
    assert dataset.sample_labels == ["hubble elliptical", "sdss J022845.39-082736.7"]  # the declination keeps its sign
    assert demo.galcolor_examples == web.example_galaxies(folder)


# ---- the real browser ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_taken_port_is_a_one_line_error_that_names_the_flag(tiny_model_path: Path) -> None:
    from galcolor.errors import GalcolorError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(GalcolorError) as err:
            web.start("127.0.0.1", port, tiny_model_path, quiet=True)
    message = str(err.value)
    assert "\n" not in message and f"127.0.0.1:{port}" in message and "--port" in message and "GRADIO_SERVER_PORT" not in message


def test_serving_prints_its_url_but_not_gradios_share_advice(tiny_model_path: Path, capfd) -> None:
    port = _free_port()
    web.start("127.0.0.1", port, tiny_model_path).close()
    printed = capfd.readouterr()
    assert f"galcolor web app on http://127.0.0.1:{port}/" in printed.out
    assert "share=True" not in printed.out + printed.err and "public link" not in printed.out + printed.err


def _fetch_png(base: str, src: str) -> np.ndarray:
    url = urllib.parse.urljoin(base, src)
    assert urllib.parse.urlsplit(url).hostname == "127.0.0.1", url
    with urllib.request.urlopen(url, timeout=30) as response:
        data = response.read()
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def _record_outside_connections(monkeypatch) -> list:
    """Every connect() or name lookup in this process that is not for the loopback address."""
    seen: list = []
    local = {"127.0.0.1", "::1", "localhost"}
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        if isinstance(address, tuple) and address[0] not in local:
            seen.append(address)
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in local and host is not None:
            seen.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


@pytest.fixture(scope="session")
def sync_api():
    """Playwright's sync API, once Debian's Chromium is known to be there (checked before any model is trained)."""
    if not CHROMIUM.exists():
        _skip_or_fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (the test never downloads a browser)")
    try:
        from playwright import sync_api
    except ImportError:
        _skip_or_fail("needs Playwright for Python: pip install playwright")
    return sync_api


@pytest.mark.browser
def test_browser_uploads_a_galaxy_and_gets_it_coloured(
    sync_api, tiny_model_path: Path, galaxy_jpeg: Path, tmp_path: Path, monkeypatch
) -> None:
    import shutil

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # uploads and results stay in tmp_path
    examples = tmp_path / "demo_galaxies"
    examples.mkdir()
    shutil.copy(galaxy_jpeg, examples / "example-spiral.jpg")
    monkeypatch.setattr(web, "DEMO_GALAXIES", examples)
    server_side = _record_outside_connections(monkeypatch)
    port = _free_port()
    demo = web.start("127.0.0.1", port, tiny_model_path, max_upload_mb=5, quiet=True)
    base = f"http://127.0.0.1:{port}/"
    outside: list[str] = []

    def local_only(route) -> None:
        host = urllib.parse.urlsplit(route.request.url).hostname
        if host == "127.0.0.1":
            route.continue_()
        else:  # the page must not reach the internet (CDN fonts, scripts, telemetry)
            outside.append(route.request.url)
            route.abort()

    with Image.open(galaxy_jpeg) as im:
        width, height = im.size
    screenshot = tmp_path / "galcolor-web.png"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.route("**/*", local_only)
                page.goto(base, wait_until="networkidle", timeout=TIMEOUT_MS)
                # The tiny model regresses and knows no surveys: neither control would do anything.
                temperature_shown = page.locator("#galcolor-temperature").is_visible()
                survey_shown = page.locator("#galcolor-survey").is_visible()
                page.locator("#galcolor-upload input[type=file]").set_input_files(str(galaxy_jpeg))

                link = page.locator("#galcolor-download a[href]").first
                link.wait_for(state="attached", timeout=TIMEOUT_MS)
                grey_img = page.locator("#galcolor-grey img").first
                colour_img = page.locator("#galcolor-colour img").first
                grey_img.wait_for(timeout=TIMEOUT_MS)
                colour_img.wait_for(timeout=TIMEOUT_MS)
                page.get_by_text("coloured by").wait_for(timeout=TIMEOUT_MS)
                page.screenshot(path=str(screenshot), full_page=True)
                print(f"\nscreenshot of the coloured galaxy: {screenshot}")

                downloaded = _fetch_png(base, link.get_attribute("href"))
                shown = _fetch_png(base, colour_img.get_attribute("src"))
                grey = _fetch_png(base, grey_img.get_attribute("src"))
                download_name = link.get_attribute("download")  # the name the browser saves it under

                # The style control re-colours the same upload: muted is half the colour of the default.
                first_src = colour_img.get_attribute("src")
                page.get_by_label("Muted: for paler surveys such as DECaLS or GAMA").check()
                page.wait_for_function(
                    "([selector, before]) => { const img = document.querySelector(selector); return img && img.src !== before; }",
                    arg=["#galcolor-colour img", first_src], timeout=TIMEOUT_MS,
                )
                muted = _fetch_png(base, page.locator("#galcolor-colour img").first.get_attribute("src"))

                # An example galaxy is coloured when clicked.
                page.get_by_text("example spiral").first.click()
                page.locator("#galcolor-status").get_by_text("example-spiral.jpg").wait_for(timeout=TIMEOUT_MS)
                example_name = page.locator("#galcolor-download a[href]").first.get_attribute("download")

                # A bad file in the same page: the user sees the one-line reason, naming their file.
                bad = tmp_path / "notes.png"
                bad.write_text("not an image\n")
                page.reload(wait_until="networkidle", timeout=TIMEOUT_MS)
                page.locator("#galcolor-upload input[type=file]").set_input_files(str(bad))
                page.get_by_text("notes.png: not a readable image").first.wait_for(timeout=TIMEOUT_MS)
                assert page.get_by_text("Traceback").count() == 0
            finally:
                browser.close()
    finally:
        demo.close()

    assert download_name == f"{galaxy_jpeg.stem}.colorized.png"
    assert example_name == "example-spiral.colorized.png"
    assert not temperature_shown and not survey_shown
    assert _chroma(muted) < 0.8 * _chroma(shown)
    assert downloaded.shape == (height, width, 3) and grey.shape == (height, width, 3)
    assert np.array_equal(downloaded, shown)  # the download is the image on the page
    assert np.abs(downloaded.astype(int) - grey.astype(int)).mean() > 0.5  # coloured, not the grey input
    assert np.ptp(grey.astype(int), axis=2).max() <= 1  # the left panel really is grey
    assert not outside, f"the page tried to reach the internet: {outside[:5]}"
    assert not server_side, f"the server tried to reach the internet: {server_side[:5]}"
    assert screenshot.stat().st_size > 10_000
    # Gradio's multipart parser leaves one empty temp file per upload; nothing with content stays.
    left = [p for p in (tmp_path / "gradio").rglob("*") if p.is_file() and p.stat().st_size > 0]
    assert not left, f"uploads and results should be deleted when the server closes: {left[:5]}"


def test_a_classification_model_shows_its_uncertainty_and_obeys_the_temperature(tiny_classifier_path, galaxy_jpeg, tmp_path):
    classifier = web.Colorizer(web.model_choices(tiny_classifier_path), output_root=tmp_path / "results")
    with Image.open(galaxy_jpeg) as image:
        width, height = image.size
    _, vivid_path, _, uncertainty_map, status = classifier(str(galaxy_jpeg), "launch", 0.05)
    _, mean_path, _, _, _ = classifier(str(galaxy_jpeg), "launch", 1.0)
    assert uncertainty_map is not None and np.asarray(Image.open(uncertainty_map)).shape == (height, width, 3)
    assert "spread of its colour distribution, from 0 (dark) to 40 ab" in status  # how to read the map
    with Image.open(vivid_path) as vivid, Image.open(mean_path) as mean:
        assert not np.array_equal(np.asarray(vivid), np.asarray(mean))


def test_the_shipped_model_shows_its_expected_error_beside_the_colour(galaxy_jpeg, tmp_path):
    shipped = web.Colorizer(web.model_choices(None), output_root=tmp_path / "results")
    with Image.open(galaxy_jpeg) as image:
        width, height = image.size
    _, colour_path, _, uncertainty_map, status = shipped(str(galaxy_jpeg), web.SHIPPED_KEY)
    assert uncertainty_map is not None, status  # the shipped regression model carries an error head
    shown = np.asarray(Image.open(uncertainty_map))
    assert shown.shape == (height, width, 3) and shown.std() > 0  # a map, not a flat placeholder
    assert "No uncertainty map" not in status
    assert "expected error of its colour, from 0 (dark) to 20 ab" in status  # not a classifier's spread, nor its scale
    # What the colour says, with the shipped model's red/blue calibration (galcolor fit-science).
    said = re.search(r"What the colour says: integrated a\* [+-][\d.]+, b\* [+-][\d.]+; a (red|blue) galaxy \(P\(red\) ([\d.]+)\)", _plain(status))
    assert said, status
    assert (said.group(1) == "red") == (float(said.group(2)) >= 0.5)


def test_the_style_control_sets_how_strong_and_how_cautious_the_colour_is(galaxy_jpeg, tmp_path):
    shipped = web.Colorizer(web.model_choices(None), output_root=tmp_path / "results")
    chroma = {}
    for style in ("auto", "sdss", "muted"):
        _, colour_path, _, _, _ = shipped(str(galaxy_jpeg), web.SHIPPED_KEY, 0.0, style)
        chroma[style] = _chroma(np.asarray(Image.open(colour_path).convert("RGB")))
    # The shipped default is 60 % of SDSS strength, muted 50 %: the galaxy's colour follows.
    assert chroma["muted"] < chroma["auto"] < 0.8 * chroma["sdss"]
    with pytest.raises(gr.Error, match="unknown colour style 'loud'"):
        shipped(str(galaxy_jpeg), web.SHIPPED_KEY, 0.0, "loud")
