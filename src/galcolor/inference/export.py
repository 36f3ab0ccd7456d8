"""ONNX deployment: one graph from normalised lightness to ab, and an onnxruntime runner for it.

The exported graph holds the network *and* its decode (the tanh head scaled to ab units, or the
annealed mean of a classification head at the checkpoint's temperature, then the model's caution
fade and saturation where it has them), so a deployment needs
no galcolor code beyond what comes before the network: the L/100 scaling, the zero padding, and
for canonical-lightness models the per-image rank mapping, all described in the file's metadata.

Export uses torch 2.13's default exporter (``dynamo=True``: torch.export, then onnxscript) rather
than the deprecated TorchScript one (``dynamo=False``); it needs the ``onnx`` and ``onnxscript``
packages, plain PyPI wheels, and nothing online once they are installed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..version import __version__
from ..models.checkpoint import LoadedModel
from ..color.lab import L_MAX, normalise_lightness
from ..models.config import ModelConfig, from_dict, to_dict
from ..errors import GalcolorError
from ..io.atomic import atomic_write_bytes
from ..color.lightness import canonical_lightness
from ..models.conditioning import galaxy_colour_input
from .galaxy_colour import saturation_of, shifted, stage_estimate, survey_weights

FORMAT = "galcolor-onnx-1"
METADATA_KEY = "galcolor"  # metadata_props entry holding the JSON description below
INPUT_NAME, OUTPUT_NAME = "lightness", "ab"
USER_INPUT_NAME = "user_lightness"  # a model with a galaxy-colour stage: the user's own L / 100, where the colour is shifted
PARITY_LIMIT_AB = 0.5  # largest |ab| difference from fp32 PyTorch an export may show (Lab units)
INSTALL_HINT = "pip install 'galcolor[onnx]'"


class DecodedNetwork(torch.nn.Module):
    """The network followed by the model's own decode: normalised L (B, 1, H, W) -> ab (B, 2, H, W),
    shifted to the galaxy-colour stage's estimate, faded by the model's caution and scaled by its
    saturation (its recognised survey's, where it has one per survey), as inference.predict does.

    Calling LoadedModel.decode and inference.galaxy_colour themselves (rather than re-writing them)
    keeps the exported arithmetic the same as PyTorch inference by construction.
    """

    def __init__(self, network: torch.nn.Module, decode: Callable[[torch.Tensor], torch.Tensor],
                 caution: Any = None, caution_strength: float = 0.0, saturation: float = 1.0, *,
                 surveys: int = 0, chosen_survey: int | None = None, stage: torch.nn.Module | None = None,
                 survey_saturation: tuple[float, ...] | None = None, point_sources_unshifted: bool = False) -> None:
        super().__init__()
        self.network = network
        self.decode = decode
        self.caution = caution if caution is not None and caution_strength > 0 else None
        self.caution_strength, self.saturation = float(caution_strength), float(saturation)
        self.recognises = surveys > 0 and hasattr(network, "conditioning")
        self.chosen_survey, self.surveys = chosen_survey, surveys
        self.stage = stage
        self.survey_saturation = None if survey_saturation is None else torch.tensor(survey_saturation, dtype=torch.float32)
        self.point_sources_unshifted = point_sources_unshifted
        self._bottleneck_output: list[torch.Tensor] = []
        if self.caution is not None:
            from ..models.caution import bottleneck

            bottleneck(network).register_forward_hook(lambda module, inputs, output: self._bottleneck_output.append(output))

    def forward(self, normalised_lightness: torch.Tensor, user_lightness: torch.Tensor | None = None) -> torch.Tensor:
        """user_lightness: the user's own L / 100 (before the canonical mapping), padded alike; the
        galaxy colour is shifted over it. None: the same as normalised_lightness."""
        self._bottleneck_output.clear()
        chosen = None
        if self.chosen_survey is not None:
            chosen = torch.nn.functional.one_hot(torch.full_like(normalised_lightness[:, 0, 0, 0], self.chosen_survey, dtype=torch.long),
                                                 self.surveys).float()  # (B, S)
        shown = normalised_lightness if user_lightness is None else user_lightness
        if getattr(self.network, "colour_conditioned", False):  # as predict.told_output: the survey, the stage, then the decoder
            skips, condition, logits = self.network.encode(normalised_lightness, survey=chosen)
            weights = survey_weights(chosen, logits)
            target = stage_estimate(self.stage, normalised_lightness, shown, weights)
            colour = None if target is None else galaxy_colour_input(*target)
            output = self.network.decode(normalised_lightness, skips, condition, colour)
        else:
            logits = None
            if self.recognises:
                output, logits = self.network(normalised_lightness, survey=chosen, with_survey_logits=True)
            else:
                output = self.network(normalised_lightness)
            weights = survey_weights(chosen, logits)
            target = stage_estimate(self.stage, normalised_lightness, shown, weights)
        ab = shifted(self.decode(output), shown * L_MAX, target, self.point_sources_unshifted)
        saturation = saturation_of(self.saturation, self.survey_saturation, weights)
        if self.caution is None:
            if isinstance(saturation, float):
                return ab * saturation if saturation != 1.0 else ab
            return ab * saturation.view(-1, 1, 1, 1)
        # As predict.colour_factor: the bottleneck's mean over the (padded) image, scored by caution itself.
        pooled = self._bottleneck_output[-1].float().mean(dim=(2, 3))
        factor = self.caution.confidence(pooled, weights) ** self.caution_strength * saturation
        return ab * factor.view(-1, 1, 1, 1)


def decoded_network(model: LoadedModel) -> DecodedNetwork:
    """A CPU fp32 copy of the model's network with its decode, in eval mode (the thing exported)."""
    network = copy.deepcopy(model.network).to("cpu", torch.float32).eval()
    bins = model.bins
    cpu_model = copy.copy(model)
    cpu_model.network = network
    if bins is not None:
        cpu_model.bins = type(bins)(bins.centres.cpu().float(), bins.prior.cpu().float())
    stage = None if model.galaxy_colour is None else copy.deepcopy(model.galaxy_colour).to("cpu", torch.float32).eval()
    chosen = None if model.survey is None else model.config.surveys.index(model.survey)
    return DecodedNetwork(network, cpu_model.decode, model.caution, model.caution_strength, model.saturation,
                          surveys=len(model.config.surveys), chosen_survey=chosen, stage=stage,
                          survey_saturation=model.survey_saturation, point_sources_unshifted=model.point_sources_unshifted).eval()


def description(model: LoadedModel) -> dict[str, Any]:
    """What a reader of the .onnx needs to feed it, stored as JSON in its metadata_props."""
    multiple = model.config.size_multiple
    reference = model.lightness_reference
    if model.config.input_lightness == "canonical" and reference is None:
        raise GalcolorError(f"{model.source}: a canonical-lightness model without its lightness reference")
    return {
        "format": FORMAT,
        "galcolor_version": __version__,
        "model_config": to_dict(model.config),
        "size_multiple": multiple,
        "input": {"name": INPUT_NAME, "shape": ["batch", 1, "height", "width"], "dtype": "float32",
                  "meaning": f"CIELAB L / {L_MAX:g} (after the canonical mapping when input_lightness is 'canonical'); "
                             f"height and width multiples of {multiple} (zero-pad below and right)"},
        "user_input": None if model.galaxy_colour is None else {
            "name": USER_INPUT_NAME, "shape": ["batch", 1, "height", "width"], "dtype": "float32",
            "meaning": f"the user's own CIELAB L / {L_MAX:g}, before any mapping, padded alike: the galaxy colour is shifted over it"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", 2, "height", "width"], "dtype": "float32",
                   "meaning": "CIELAB a and b"},
        "input_lightness": model.config.input_lightness,
        "lightness_reference": None if reference is None else [float(v) for v in reference.float().cpu()],
        "caution": {"included": model.cautious,
                    "strength": model.caution_strength, "saturation": model.saturation},
        "survey_saturation": None if model.survey_saturation is None else dict(zip(model.config.surveys, model.survey_saturation)),
        "survey": model.survey or "auto",
        "galaxy_colour": {"included": model.galaxy_colour is not None,
                          "told_to_decoder": bool(model.config.galaxy_colour_conditioned),
                          "meaning": "ab shifted so that its L-weighted mean over pixels with L > 15 is the galaxy-colour stage's estimate"
                                     + (", which the network's decoder is also told" if model.config.galaxy_colour_conditioned else "")},
        "source_checkpoint": model.source.name if model.source else None,
    }


def _require(modules: tuple[str, ...], purpose: str) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise GalcolorError(f"{purpose} needs the '{name}' package, which is not installed: {INSTALL_HINT}") from None


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _graph_bytes(module: "DecodedNetwork", model: LoadedModel, opset: int | None, path: Path) -> tuple[bytes, int | None]:
    """`module` as a serialised ONNX model with its galcolor metadata, and the opset it got."""
    multiple = model.config.size_multiple
    proto = _exported(module, multiple, opset, model.source or "model")
    written_opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and written_opset != opset:  # the exporter falls back silently when a conversion fails
        raise GalcolorError(f"{path}: not written: the exporter cannot target opset {opset} (it produced {written_opset}); choose a later one")
    _name_dynamic_axes(proto)
    proto.doc_string = (f"galcolor colourizer: {INPUT_NAME} (batch, 1, height, width) = L/{L_MAX:g} with height and "
                        f"width multiples of {multiple} -> {OUTPUT_NAME} (batch, 2, height, width) in Lab units")
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(description(model))
    return proto.SerializeToString(), written_opset


def _exported(module: "DecodedNetwork", multiple: int, opset: int | None, source: str):
    """The ONNX ModelProto of `module`, with dynamic batch, height and width."""
    example = normalise_lightness(torch.rand(2, 1, 2 * multiple, 3 * multiple) * L_MAX)
    dynamic = torch.export.Dim.DYNAMIC
    axes = {0: dynamic, 2: dynamic, 3: dynamic}
    examples, names, shapes = (example,), [INPUT_NAME], {"normalised_lightness": axes}
    if module.stage is not None:
        # A distinct tensor: given the same one twice, the exporter makes the two inputs one.
        examples, names, shapes = (example, example.clone()), [INPUT_NAME, USER_INPUT_NAME], {**shapes, "user_lightness": axes}
    try:
        # The exporter logs missing optional packages (torchvision) and warns about its own
        # internals; none of that is the user's business, and --json output must stay clean.
        with _quiet_exporter():
            program = torch.onnx.export(
                module, examples, dynamo=True, opset_version=opset, input_names=names,
                output_names=[OUTPUT_NAME], dynamic_shapes=shapes, verbose=False, external_data=False,
            )
        return program.model_proto
    except Exception as err:  # the exporter raises many types; the user needs one line, not a trace
        raise GalcolorError(f"{source}: ONNX export failed ({_first_line(err)})") from None


def _pytorch(module: "DecodedNetwork", check: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        checked = torch.from_numpy(check)
        return (module(checked) if module.stage is None else module(checked, checked.clone())).numpy()


def _parity(expected: np.ndarray, data: bytes, check: np.ndarray, path: Path) -> float:
    """Largest |ab| difference between the serialised graph run on `check` in onnxruntime and
    `expected`, what PyTorch gave for it."""
    return float(np.abs(OnnxColorizer(data, name=str(path)).run_graph(check) - expected).max())


def _check_lightness(size_multiple: int) -> torch.Tensor:
    """A smooth galaxy-like L field (bright core, dark sky), not a multiple of the pad size."""
    height, width = 3 * size_multiple + 5, 2 * size_multiple + 3
    y, x = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    core = 85.0 * torch.exp(-(x**2 + (y / 0.6) ** 2) / 0.15)
    return torch.stack([core, core.flip(-1) * 0.5]).unsqueeze(1)  # (2, 1, H, W)


def pad_to_multiple(normalised: np.ndarray, multiple: int) -> np.ndarray:
    """Zero-pad (B, 1, H, W) below and right to multiples of `multiple`, as infer.network_output does."""
    height, width = normalised.shape[-2:]
    pad_bottom, pad_right = (-height) % multiple, (-width) % multiple
    if not (pad_bottom or pad_right):
        return normalised
    return np.pad(normalised, ((0, 0), (0, 0), (0, pad_bottom), (0, pad_right)))  # zeros: black sky


def export_onnx(model: LoadedModel, path: str | Path, opset: int | None = None) -> dict[str, Any]:
    """Write `model` (network + decode) to `path` as ONNX with dynamic batch, height and width.

    The graph is checked with onnxruntime against fp32 PyTorch before anything is written, and
    the file is replaced atomically. Returns what was written (path, opset, bytes, parity, ...).
    """
    _require(("onnx", "onnxscript", "onnxruntime"), "ONNX export")
    path = Path(path)
    if path.is_dir():
        raise GalcolorError(f"{path}: is a folder; give the .onnx file to write")
    module = decoded_network(model)
    multiple = model.config.size_multiple
    data, written_opset = _graph_bytes(module, model, opset, path)

    # The check compares the graph alone with the module it came from, on the same padded input;
    # the preprocessing around it is the runner's, covered by tests against infer.predict_ab.
    check = pad_to_multiple(normalise_lightness(_check_lightness(multiple).numpy()), multiple)
    expected = _pytorch(module, check)
    difference = _parity(expected, data, check, path)
    if module.caution is not None and not np.abs(expected).max() > 0:
        # The small synthetic probe looks nothing like the training survey, so the caution fades
        # it to grey in both, which would hide any error in the network itself: check a graph
        # of the same network without the caution too.
        bare = decoded_network(dataclasses.replace(model, caution=None))
        difference = max(difference, _parity(_pytorch(bare, check), _graph_bytes(bare, model, opset, path)[0], check, path))
    if not difference <= PARITY_LIMIT_AB:
        raise GalcolorError(f"{path}: not written: the exported graph differs from PyTorch by {difference:.3g} ab "
                            f"(limit {PARITY_LIMIT_AB})")
    atomic_write_bytes(path, data)
    return {
        "onnx": str(path), "model": str(model.source or "model"), "head": model.config.head, "size_multiple": multiple,
        "opset": written_opset, "bytes": len(data), "max_abs_ab_diff_vs_pytorch_fp32": difference,
    }


@contextlib.contextmanager
def _quiet_exporter():
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.fx.experimental.symbolic_shapes", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        # stderr too: besides its logged warning, torch's symbolic-shape tracer writes the whole
        # traced graph (hundreds of lines) there when it meets a size it cannot trace to code. A real
        # failure still raises, and the CLI reports it in one line.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _name_dynamic_axes(proto) -> None:
    """Give the graph's free dimensions readable names (the exporter calls them s0, s53, ...)."""
    for value in [*proto.graph.input, *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for index, name in ((0, "batch"), (2, "height"), (3, "width")):
            if len(dims) > index and not dims[index].HasField("dim_value"):
                dims[index].dim_param = name


class OnnxColorizer:
    """An exported galcolor model run by onnxruntime on the CPU.

    `predict_ab` takes what `galcolor.infer.predict_ab` takes, L in [0, 100] as (B, 1, H, W), and
    pads and scales it the same way; it returns ab as a float32 numpy array (B, 2, H, W).
    """

    def __init__(self, model: str | Path | bytes, threads: int | None = None, name: str | None = None) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise GalcolorError(f"running an ONNX model needs onnxruntime, which is not installed: {INSTALL_HINT}") from None
        self.name = name or ("<bytes>" if isinstance(model, bytes) else str(model))
        if not isinstance(model, bytes):
            path = Path(model)
            if not path.is_file():
                raise GalcolorError(f"{path}: no such ONNX file")
            model = str(path)
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only: its warnings are about graph internals, not the user's input
        try:
            self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's pybind errors share no useful base class
            raise GalcolorError(f"{self.name}: not a readable ONNX model ({_first_line(err)})") from None
        self.description = self._read_description()
        self.size_multiple = int(self.description["size_multiple"])
        self.input_lightness = self.description.get("input_lightness", "raw")
        if self.input_lightness not in ("raw", "canonical"):
            raise GalcolorError(f"{self.name}: input lightness {self.input_lightness!r} needs a newer galcolor")
        try:
            self.config: ModelConfig = from_dict(ModelConfig, {**self.description["model_config"], "input_lightness": self.input_lightness})
            reference = self.description.get("lightness_reference")
            self.lightness_reference = None if reference is None else torch.tensor(reference, dtype=torch.float32)
        except (GalcolorError, TypeError, ValueError) as err:
            raise GalcolorError(f"{self.name}: damaged galcolor metadata ({_first_line(err)})") from None
        if self.input_lightness == "canonical" and (self.lightness_reference is None or self.lightness_reference.ndim != 1):
            raise GalcolorError(f"{self.name}: a canonical-lightness model without its lightness reference")

    def _read_description(self) -> dict[str, Any]:
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if text is None:
            raise GalcolorError(f"{self.name}: not a galcolor ONNX model (no '{METADATA_KEY}' metadata; export one with galcolor export)")
        try:
            found = json.loads(text)
            valid = found.get("format") == FORMAT and int(found["size_multiple"]) >= 1 and isinstance(found["model_config"], dict)
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            valid = False
        if not valid:
            raise GalcolorError(f"{self.name}: not a galcolor ONNX model this version reads (expected format '{FORMAT}')")
        names = ([i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()])
        if names not in (([INPUT_NAME], [OUTPUT_NAME]), ([INPUT_NAME, USER_INPUT_NAME], [OUTPUT_NAME])):
            raise GalcolorError(f"{self.name}: expected the input '{INPUT_NAME}' (and '{USER_INPUT_NAME}' for a model with a "
                                f"galaxy-colour stage) and one output '{OUTPUT_NAME}', found {names}")
        self.takes_user_lightness = USER_INPUT_NAME in names[0]
        return found

    def network_input(self, lightness: np.ndarray | torch.Tensor, canonical: bool = True) -> np.ndarray:
        """(B, 1, H, W) L in [0, 100] -> the graph's input: mapped (canonical models, unless canonical is
        False: the user_lightness input), scaled, padded."""
        if isinstance(lightness, torch.Tensor):
            lightness = lightness.detach().cpu().float()
        lightness = torch.as_tensor(np.asarray(lightness, dtype=np.float32))
        if lightness.ndim != 4 or lightness.shape[1] != 1 or 0 in lightness.shape:
            raise GalcolorError(f"{self.name}: expected lightness of shape (B, 1, H, W), got {tuple(lightness.shape)}")
        if canonical and self.input_lightness == "canonical":
            lightness = canonical_lightness(lightness, self.lightness_reference)  # the very mapping PyTorch inference applies
        return pad_to_multiple(normalise_lightness(lightness.numpy()), self.size_multiple)

    def run_graph(self, network_input: np.ndarray, user_input: np.ndarray | None = None) -> np.ndarray:
        """The bare graph: (B, 1, H, W) normalised L, H and W multiples of size_multiple -> ab. A graph
        with a galaxy-colour stage also takes the user's own normalised L (default: network_input)."""
        feeds = {INPUT_NAME: np.ascontiguousarray(network_input, dtype=np.float32)}
        if self.takes_user_lightness:
            feeds[USER_INPUT_NAME] = np.ascontiguousarray(network_input if user_input is None else user_input, dtype=np.float32)
        (ab,) = self.session.run([OUTPUT_NAME], feeds)
        return ab

    def predict_ab(self, lightness: np.ndarray | torch.Tensor) -> np.ndarray:
        """(B, 1, H, W) L in [0, 100] (numpy or torch) -> (B, 2, H, W) float32 ab."""
        height, width = lightness.shape[-2:]
        user = self.network_input(lightness, canonical=False) if self.takes_user_lightness else None
        return self.run_graph(self.network_input(lightness), user)[..., :height, :width]
