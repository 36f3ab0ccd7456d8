"""A local web app: upload a grey or colour image (JPEG, PNG, TIFF, FITS), see grey | colour, download the PNG.

Built on Gradio (the optional ``web`` extra). Privacy and footprint:

* analytics and Gradio's version check are off, and the theme uses the system's fonts, so the page
  and the server fetch nothing from the internet (tests/test_web.py checks the browser side);
* the server binds to 127.0.0.1 unless told otherwise, and has no login: do not expose it;
* uploads stay in Gradio's temp folder (``GRADIO_TEMP_DIR``, default ``<tmp>/gradio``); the PNGs we
  make are written there too, and Gradio deletes both an hour after they were made and at shutdown.

Every file is decoded by :func:`galcolor.io.read_image`, so a bad upload shows its one-line reason
(naming the file) in the page, never a traceback.
"""

from __future__ import annotations

import os

# Before Gradio is imported: no telemetry, no version check against api.gradio.app.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import ipaddress
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GalcolorError, InputError
from ..io.paths import IMAGE_SUFFIXES
from ..io.decode import read_image
from ..io.atomic import write_png
from ..color.style import styled

if TYPE_CHECKING:
    import gradio

    from ..models.checkpoint import LoadedModel

try:
    import gradio as gr
except ImportError:  # the optional extra is missing; build_app says how to install it
    gr = None

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_BYTES = 50_000_000
# A 50 MB upload may still decode to a giant image; 50 Mpx (about 7000 x 7000) keeps two
# concurrent requests within a few GB of memory. The CLI's --max-pixels default is 200 Mpx.
WEB_MAX_PIXELS = 50_000_000
# How many requests may wait for one of the `max_concurrent` workers before new ones are turned away.
QUEUE_PER_WORKER = 8
# Gradio deletes the uploads and results this app made once they are an hour old (checked every 10 min).
CACHE_CLEANUP = (600, 3600)

SHIPPED_KEY = "shipped"
FILE_TYPES = sorted(IMAGE_SUFFIXES)

_SYSTEM_SANS = ("ui-sans-serif", "system-ui", "sans-serif")
_SYSTEM_MONO = ("ui-monospace", "Consolas", "monospace")


def _require_gradio():
    if gr is None:
        raise GalcolorError("the web app needs Gradio, which is not installed: pip install 'galcolor[web]'")
    return gr


@dataclass(frozen=True)
class ModelChoice:
    key: str  # the dropdown's value; the client can only pick among these keys, never send a path
    label: str
    path: Path


def model_choices(model_path: Path | None) -> list[ModelChoice]:
    """The shipped model (when its file exists) and the launch-time `model_path`; the first is the default."""
    from .api import shipped_model_path

    choices = []
    if model_path is not None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise GalcolorError(f"{model_path}: no such model file")
        choices.append(ModelChoice(key="launch", label=f"{model_path.parent.name}/{model_path.name}".lstrip("/"), path=model_path))
    shipped = shipped_model_path()
    if shipped.is_file() and not (model_path is not None and model_path.resolve() == shipped.resolve()):
        choices.append(ModelChoice(key=SHIPPED_KEY, label=f"shipped model ({shipped.stem})", path=shipped))
    if not choices:
        raise GalcolorError(f"no model to serve: the shipped model {shipped} is missing; pass a checkpoint with --model")
    return choices


def _display_name(path: Path) -> str:
    return path.name or str(path)


def _stem(name: str) -> str:
    lower = name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return name[: -len(suffix)]
    return Path(name).stem or "image"


def _md_escape(text: str) -> str:
    """A file name shown as literal text in Markdown (a user may name a file `[x](http://...)`)."""
    return "".join("\\" + c if c in "\\`*_{}[]()<>#+-.!|~" else c for c in text)


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.3g} MB"


class Colorizer:
    """The app's colour function, callable without a browser: (upload path, model key, temperature,
    style) -> outputs.

    Returns (grey PNG path, colour PNG path, the same PNG path for download, uncertainty map PNG
    path or None, a status line). The temperature applies to classification models; 0 keeps the
    model's own (chosen on its validation split). The style is one of style.STYLES, as `--style`.
    Every problem the user can cause raises ``gradio.Error`` with one line naming the uploaded file.
    """

    def __init__(
        self,
        choices: list[ModelChoice],
        *,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        max_pixels: int = WEB_MAX_PIXELS,
        device: str = "auto",
        output_root: Path | None = None,
    ):
        self.choices = {choice.key: choice for choice in choices}
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels
        self.device = device
        self._output_root = output_root
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def model(self, key: str) -> "LoadedModel":
        from .api import load_model

        choice = self.choices.get(key)
        if choice is None:
            raise GalcolorError(f"unknown model {key!r}: choose one from the list")
        with self._lock:  # two first requests must not load the same checkpoint twice
            if key not in self._models:
                self._models[key] = load_model(choice.path, self.device)
            return self._models[key]

    def output_folder(self) -> Path:
        """A fresh folder under Gradio's temp folder (never elsewhere), so each result keeps its own name."""
        root = Path(self._output_root) if self._output_root is not None else Path(_require_gradio().utils.get_upload_folder())
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="galcolor-", dir=root))

    def __call__(self, file_path: str | Path | None, model_key: str | None = None, temperature: float = 0.0, style: str = "auto"):
        gradio = _require_gradio()
        if not file_path:
            raise gradio.Error("Choose an image file first (JPEG, PNG, TIFF or FITS).", print_exception=False)
        path = Path(file_path)
        name = _display_name(path)
        try:
            return self._colorize(path, name, model_key or next(iter(self.choices)), temperature, style or "auto")
        except InputError as err:  # the temp path means nothing to the user: name the file they chose
            raise gradio.Error(f"{name}: {err.problem}", print_exception=False) from None
        except GalcolorError as err:
            raise gradio.Error(str(err).replace(str(path), name), print_exception=False) from None
        except MemoryError:
            raise gradio.Error(f"{name}: not enough memory to colour this image", print_exception=False) from None
        except Exception as err:  # a bug or a broken model: one line for the user, the traceback in the server log
            log.exception("colouring %s failed", path)
            reason = " ".join(str(err).split())[:160] or type(err).__name__
            raise gradio.Error(f"{name}: could not colour this image ({type(err).__name__}: {reason})", print_exception=False) from None

    def on_choice_change(self, file_path: str | Path | None, model_key: str | None, temperature: float = 0.0, style: str = "auto"):
        """Re-colour the current upload with the newly chosen model or style; nothing to do before an upload."""
        if not file_path:
            gradio = _require_gradio()
            return (gradio.skip(),) * 5
        return self(file_path, model_key, temperature, style)

    def _colorize(self, path: Path, name: str, model_key: str, temperature: float = 0.0, style: str = "auto"):
        from ..inference.arrays import colorize_lab
        from ..color.lab import lab_array_to_rgb8
        from ..inference.diversity import extra_outputs, uncertainty_legend

        try:
            size = path.stat().st_size
        except OSError:
            size = None  # read_image names the problem
        if size is not None and size > self.max_upload_bytes:
            raise InputError(path, f"file is {_megabytes(size)}, over this server's upload limit of {_megabytes(self.max_upload_bytes)}")
        decoded = read_image(path, max_pixels=self.max_pixels, limit_name="this server's limit")
        choice = self.choices.get(model_key)
        model = styled(self.model(model_key), style)
        if temperature and model.bins is not None:
            model = model.with_temperature(float(temperature))
        began = time.perf_counter()
        predicted, input_lab = colorize_lab(decoded.rgb, model)
        folder = self.output_folder()
        uncertainty_png, uncertainty_note = None, " No uncertainty map: this model has none (a classifier, or galcolor fit-uncertainty, gives one)."
        if model.has_uncertainty:
            try:
                uncertainty_map = extra_outputs(model, predicted, 0, True, 0)[".uncertainty.png"]
            except GalcolorError as err:  # e.g. too large for a per-bin distribution
                uncertainty_note = f" No uncertainty map: {err}."
            else:
                # Files in this request's own folder, not numpy arrays: Gradio caches arrays under a
                # hash of their content and rewrites that file while another request may be serving it.
                uncertainty_png = folder / f"{_stem(name)}.uncertainty.png"
                write_png(uncertainty_png, uncertainty_map)
                uncertainty_note = f" {uncertainty_legend(model)}."
        seconds = time.perf_counter() - began
        grey_lab = np.zeros_like(input_lab)
        grey_lab[..., 0] = input_lab[..., 0]
        grey_png = folder / f"{_stem(name)}.grey.png"
        write_png(grey_png, lab_array_to_rgb8(grey_lab))  # exactly the lightness the network saw
        colour = lab_array_to_rgb8(predicted)
        png = folder / f"{_stem(name)}.colorized.png"
        write_png(png, colour)
        height, width = colour.shape[:2]
        note = " Colour input: only its lightness was used." if decoded.is_colour else ""
        status = f"**{_md_escape(name)}**: {width}×{height} px, coloured by {_md_escape(choice.label)} in {seconds:.1f} s.{note}{uncertainty_note}"
        return str(grey_png), str(png), str(png), str(uncertainty_png) if uncertainty_png else None, status


def _theme():
    gradio = _require_gradio()
    # System fonts only: Gradio's default theme would otherwise load web fonts.
    return gradio.themes.Default(font=list(_SYSTEM_SANS), font_mono=list(_SYSTEM_MONO))


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

    with gradio.Blocks(title="galcolor", analytics_enabled=False, delete_cache=CACHE_CLEANUP) as demo:
        gradio.Markdown(
            "# galcolor\nColour a grayscale galaxy image. The network sees only the image's lightness (CIELAB L) "
            "and predicts its colour; a colour upload is reduced to its lightness first. "
            f"JPEG, PNG, TIFF or FITS, up to {_megabytes(max_upload_bytes)} and {max_pixels:,} pixels."
        )
        with gradio.Row():
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
                )
                style = gradio.Radio(
                    choices=[("Default: fades on unfamiliar images, at the model's colour strength", "auto"),
                             ("SDSS: full SDSS-strength colour everywhere", "sdss"),
                             ("Muted: for paler surveys such as DECaLS or GAMA", "muted")],
                    value="auto", label="Colour style", elem_id="galcolor-style",
                )
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
        inputs = [upload, model, temperature, style]
        gradio.on([upload.upload, button.click], colorizer, inputs=inputs, outputs=outputs)
        gradio.on([model.change, style.change], colorizer.on_choice_change, inputs=inputs, outputs=outputs)
        upload.clear(lambda: (None, None, None, None, ""), outputs=outputs, queue=False)

    demo.queue(default_concurrency_limit=max_concurrent, max_size=QUEUE_PER_WORKER * max_concurrent)
    demo.galcolor_colorizer = colorizer  # for tests and embedding: the same function the page calls
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
    """Build and launch the app without blocking; the caller stops it with ``demo.close()``."""
    if not max_upload_mb > 0:
        raise GalcolorError(f"the upload limit must be above 0 MB, got {max_upload_mb}")
    max_upload_bytes = int(max_upload_mb * 1_000_000)
    demo = build_app(model_path, max_upload_bytes, max_concurrent, device=device)
    if not _is_loopback(host):
        log.warning("serving on %s: anyone who can reach this address can use the app (there is no login)", host)
    try:
        demo.launch(prevent_thread_lock=True, quiet=quiet, **launch_options(host, port, max_upload_bytes))
    except OSError as err:
        reason = " ".join(str(err).split())
        if "port" in reason.lower():  # Gradio's own advice names its environment variable and launch(), not our flag
            reason = "the port is taken or not allowed; choose another with --port"
        raise GalcolorError(f"could not serve on {host}:{port}: {reason}") from None
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
