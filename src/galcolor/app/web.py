"""A local web app: upload a grey or colour image (JPEG, PNG, TIFF, FITS), see grey | colour, download the PNG.

Built on Gradio (the optional ``web`` extra). Privacy and footprint:

* analytics and Gradio's version check are off, and the theme uses the system's fonts, so the page
  and the server fetch nothing from the internet (tests/test_web.py checks the browser side);
* the server binds to 127.0.0.1 unless told otherwise, and has no login: do not expose it;
* uploads stay in Gradio's temp folder (``GRADIO_TEMP_DIR``, default ``<tmp>/gradio``); the PNGs we
  make are written there too, and Gradio deletes both an hour after they were made and at shutdown.

Every file is decoded by :func:`galcolor.io.read_image`, so a bad upload shows its one-line reason
(naming the file) in the page, never a traceback.

Example galaxies to click are the JPEG and PNG files of ``galcolor/demo_galaxies/`` when that folder
is there when the app is built; without it the page has no examples.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GalcolorError
from ..io.paths import IMAGE_SUFFIXES
from ..models.checkpoint import AUTO_SURVEY, stored_config
from .web_colorizer import (  # noqa: F401  (SHIPPED_KEY, ModelChoice: re-exported beside the app that uses them)
    DEFAULT_MAX_UPLOAD_BYTES,
    SHIPPED_KEY,
    WEB_MAX_PIXELS,
    Colorizer,
    ModelChoice,
    _megabytes,
    _require_gradio,
    known_surveys,
    model_choices,
    uses_temperature,
)

if TYPE_CHECKING:
    import gradio

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
# How many requests may wait for one of the `max_concurrent` workers before new ones are turned away.
QUEUE_PER_WORKER = 8
# Gradio deletes the uploads and results this app made once they are an hour old (checked every 10 min).
CACHE_CLEANUP = (600, 3600)

FILE_TYPES = sorted(IMAGE_SUFFIXES)
DEMO_GALAXIES = Path(__file__).resolve().parents[1] / "demo_galaxies"
EXAMPLE_SUFFIXES = (".jpg", ".png")

_SYSTEM_SANS = ("ui-sans-serif", "system-ui", "sans-serif")
_SYSTEM_MONO = ("ui-monospace", "Consolas", "monospace")


def _theme():
    gradio = _require_gradio()
    # System fonts only: Gradio's default theme would otherwise load web fonts.
    return gradio.themes.Default(font=list(_SYSTEM_SANS), font_mono=list(_SYSTEM_MONO))


def example_galaxies(folder: Path | None = None) -> list[Path]:
    """The example images the page offers: JPEG and PNG files of `folder` (default DEMO_GALAXIES); none without it."""
    folder = DEMO_GALAXIES if folder is None else Path(folder)
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in EXAMPLE_SUFFIXES and path.is_file())


def _example_label(path: Path) -> str:
    """'decals-J022845.39-082736.7.jpg' -> 'decals J022845.39-082736.7': only the first dash separates, a declination keeps its sign."""
    return path.stem.replace("_", " ").replace("-", " ", 1)


def build_app(
    model_path: Path | None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_concurrent: int = 2,
    *,
    max_pixels: int = WEB_MAX_PIXELS,
    device: str = "auto",
) -> "gradio.Blocks":
    """The Gradio app (queued, not launched). The default model is loaded now, so a bad checkpoint fails here."""
    gradio = _require_gradio()
    if max_upload_bytes < 1:
        raise GalcolorError(f"the upload limit must be at least 1 byte, got {max_upload_bytes}")
    if max_concurrent < 1:
        raise GalcolorError(f"max_concurrent must be at least 1, got {max_concurrent}")
    choices = model_choices(model_path)
    colorizer = Colorizer(choices, max_upload_bytes=max_upload_bytes, max_pixels=max_pixels, device=device)
    colorizer.model(choices[0].key)
    default_config = stored_config(choices[0].path)
    examples = example_galaxies()

    with gradio.Blocks(title="galcolor", analytics_enabled=False, delete_cache=CACHE_CLEANUP) as demo:
        gradio.Markdown(
            "# galcolor\nColour a grayscale galaxy image. The network sees only the image's lightness (CIELAB L) "
            "and predicts its colour; a colour upload is reduced to its lightness first. "
            f"JPEG, PNG, TIFF or FITS, up to {_megabytes(max_upload_bytes)} and {max_pixels:,} pixels."
        )
        with gradio.Row():
            with gradio.Column() as upload_column:
                upload = gradio.File(
                    label="Image (JPEG, PNG, TIFF or FITS)", file_types=FILE_TYPES, type="filepath", elem_id="galcolor-upload",
                )
            with gradio.Column():
                model = gradio.Dropdown(
                    choices=[(c.label, c.key) for c in choices], value=choices[0].key, label="Model", elem_id="galcolor-model",
                )
                temperature = gradio.Slider(
                    minimum=0.0, maximum=1.0, value=0.0, step=0.01, elem_id="galcolor-temperature",
                    label="Temperature (classification models: lower is more vivid; 0 keeps the model's own)",
                    visible=uses_temperature(default_config),
                )
                style = gradio.Radio(
                    choices=[("Default: fades on unfamiliar images, at the model's colour strength", "auto"),
                             ("SDSS: full SDSS-strength colour everywhere", "sdss"),
                             ("Muted: for paler surveys such as DECaLS or GAMA", "muted")],
                    value="auto", label="Colour style", elem_id="galcolor-style",
                )
                survey = gradio.Dropdown(
                    choices=[("Auto: as the survey the model recognises", AUTO_SURVEY)] + [(name, name) for name in known_surveys(choices)],
                    value=AUTO_SURVEY, label="Survey style (models trained on several surveys)", elem_id="galcolor-survey",
                    visible=bool(default_config.surveys),
                )
                with gradio.Accordion("Colour hints: the galaxy's known colour (optional)", open=False, elem_id="galcolor-hints"):
                    galaxy_colour = gradio.Textbox(
                        label="Galaxy colour a*, b* (its mean, e.g. -2, 8; press Enter)", placeholder="a*, b*", elem_id="galcolor-galaxy-colour",
                    )
                    colour_reference = gradio.File(
                        label="Colour reference image (same galaxy, any size)", file_types=FILE_TYPES, type="filepath",
                        elem_id="galcolor-colour-reference",
                    )
                    gradio.Markdown("Either replaces the model's estimate of the galaxy's mean colour; give one, not both.")
                button = gradio.Button("Colour", variant="primary", elem_id="galcolor-run")
        status = gradio.Markdown(elem_id="galcolor-status")
        with gradio.Row(equal_height=True):
            grey = gradio.Image(
                label="Grey (the lightness the network sees)", type="filepath", format="png", interactive=False,
                buttons=["fullscreen"], elem_id="galcolor-grey",
            )
            colour = gradio.Image(
                label="Colour (predicted)", type="filepath", format="png", interactive=False,
                buttons=["download", "fullscreen"], elem_id="galcolor-colour",
            )
            uncertainty = gradio.Image(
                label="Uncertainty (brighter is less sure; its scale is given below)", type="filepath", format="png",
                interactive=False, buttons=["fullscreen"], elem_id="galcolor-uncertainty",
            )
        download = gradio.File(label="Download the colour PNG", interactive=False, elem_id="galcolor-download")

        outputs = [grey, colour, download, uncertainty, status]
        inputs = [upload, model, temperature, style, survey, galaxy_colour, colour_reference]
        if examples:
            with upload_column:  # under the upload; made here, once every input it fills and reads exists
                gradio.Examples(
                    examples=[[str(path)] for path in examples], inputs=inputs, outputs=outputs, fn=colorizer.on_choice_change,
                    run_on_click=True, cache_examples=False, example_labels=[_example_label(path) for path in examples],
                    label="Example galaxies (click one to colour it)", elem_id="galcolor-examples",
                )
        gradio.on([upload.upload, button.click], colorizer, inputs=inputs, outputs=outputs)
        # The controls first, so the re-colouring reads a survey reset for the new model; .input, not .change,
        # so that reset does not re-colour a second time.
        model.change(colorizer.controls, inputs=[model, survey], outputs=[temperature, survey], queue=False,
                     show_progress="hidden").then(colorizer.on_choice_change, inputs=inputs, outputs=outputs)
        gradio.on([style.input, survey.input, galaxy_colour.submit, colour_reference.upload, colour_reference.clear],
                  colorizer.on_choice_change, inputs=inputs, outputs=outputs)
        upload.clear(lambda: (None, None, None, None, ""), outputs=outputs, queue=False)

    demo.queue(default_concurrency_limit=max_concurrent, max_size=QUEUE_PER_WORKER * max_concurrent)
    demo.galcolor_colorizer = colorizer  # for tests and embedding: the same function the page calls
    demo.galcolor_examples = examples
    return demo


def launch_options(host: str, port: int, max_upload_bytes: int) -> dict[str, Any]:
    """What `serve` passes to Blocks.launch: local only, nothing fetched, Gradio's own upload limit."""
    return {
        "server_name": host,
        "server_port": port,
        "max_file_size": max_upload_bytes,
        "share": False,
        "inbrowser": False,
        "ssr_mode": False,  # no Node server
        "mcp_server": False,
        "pwa": False,
        "enable_monitoring": False,
        "show_error": False,  # only our one-line gr.Error messages reach the page
        "quiet": True,  # Gradio's banner advises share=True, a public link; the URL line is ours (start)
        "theme": _theme(),
    }


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    model_path: Path | None = None,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_BYTES / 1_000_000,
    max_concurrent: int = 2,
    *,
    device: str = "auto",
    quiet: bool = False,
) -> "gradio.Blocks":
    """Build and launch the app without blocking; the caller stops it with ``demo.close()``.
    Unless `quiet`, prints the one line with its URL (Gradio's own banner is never printed)."""
    if not max_upload_mb > 0:
        raise GalcolorError(f"the upload limit must be above 0 MB, got {max_upload_mb}")
    max_upload_bytes = int(max_upload_mb * 1_000_000)
    demo = build_app(model_path, max_upload_bytes, max_concurrent, device=device)
    if not _is_loopback(host):
        log.warning("serving on %s: anyone who can reach this address can use the app (there is no login)", host)
    try:
        demo.launch(prevent_thread_lock=True, **launch_options(host, port, max_upload_bytes))
    except OSError as err:
        reason = " ".join(str(err).split())
        if "port" in reason.lower():  # Gradio's own advice names its environment variable and launch(), not our flag
            reason = "the port is taken or not allowed; choose another with --port"
        raise GalcolorError(f"could not serve on {host}:{port}: {reason}") from None
    if not quiet:
        print(f"galcolor web app on {demo.local_url}", flush=True)
    return demo


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    model_path: Path | None = None,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_BYTES / 1_000_000,
    max_concurrent: int = 2,
    *,
    device: str = "auto",
    quiet: bool = False,
    on_ready=None,
) -> None:
    """Run the web app until interrupted (Ctrl-C raises KeyboardInterrupt after the server is closed).

    `on_ready(url)` is called once the server listens (the CLI prints the URL, as JSON with --json)."""
    demo = start(host, port, model_path, max_upload_mb, max_concurrent, device=device, quiet=quiet)
    if on_ready is not None:
        on_ready(demo.local_url)
    try:  # Ctrl-C propagates (Gradio's block_thread would swallow it), so the CLI can exit 130
        while demo.is_running:
            time.sleep(0.2)
    finally:
        demo.close()
