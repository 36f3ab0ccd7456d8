"""ONNX deployment as a user meets it: `galcolor export`, onnxruntime colours like PyTorch (within
0.5 ab of fp32 PyTorch), any image size through one file, and one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the ONNX tests need: pip install 'galcolor[onnx]'")
pytest.importorskip("onnxscript", reason="the ONNX tests need: pip install 'galcolor[onnx]'")

from galcolor.app.api import load_model, shipped_model_path  # noqa: E402
from galcolor.app.cli import main  # noqa: E402
from galcolor.color.lab import rgb_to_lab  # noqa: E402
from galcolor.models.device import full_precision  # noqa: E402
from galcolor.errors import GalcolorError  # noqa: E402
from galcolor.inference.export import PARITY_LIMIT_AB, OnnxColorizer, export_onnx  # noqa: E402
from galcolor.inference.predict import predict_ab  # noqa: E402
from galcolor.io.decode import read_image  # noqa: E402

INSTALL_HINT = "pip install 'galcolor[onnx]'"


def strict_json(text: str):
    def refuse(token: str):
        raise ValueError(f"non-JSON token {token} in output")

    return json.loads(text, parse_constant=refuse)


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("galcolor: error:"), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def real_lightness(sdss_dir: Path, count: int = 2) -> torch.Tensor:
    """(count, 1, H, W) L of real SDSS colour galaxies (one spiral, one not, ...)."""
    paths = [sorted((sdss_dir / kind).glob("*.jpg"))[0] for kind in ("spirals", "non_spirals")][:count]
    rgb = torch.from_numpy(np.stack([read_image(p).rgb for p in paths])).permute(0, 3, 1, 2)
    with torch.inference_mode():
        return rgb_to_lab(rgb)[:, :1].contiguous()


@pytest.fixture
def pytorch_fp32():
    """PyTorch inference as users run it, but with bf16 autocast off: the reference of the 0.5 ab promise.

    (This CPU may have bf16 units, and bf16 alone moves ab by about 1 unit.)"""

    def run(model, lightness: torch.Tensor) -> np.ndarray:
        with torch.inference_mode(), full_precision():
            return predict_ab(model, lightness).cpu().numpy()

    return run


@pytest.fixture(scope="module")
def shipped_onnx(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "galcolor-unet.onnx"
    export_onnx(load_model(shipped_model_path(), "cpu"), path)
    return path


def test_shipped_model_in_onnxruntime_colours_a_real_galaxy_like_pytorch(shipped_onnx, sdss_dir, pytorch_fp32):
    model = load_model(shipped_model_path(), "cpu")
    lightness = real_lightness(sdss_dir)
    expected = pytorch_fp32(model, lightness)
    got = OnnxColorizer(shipped_onnx).predict_ab(lightness)
    assert got.shape == expected.shape == (2, 2, *lightness.shape[-2:])
    assert np.abs(expected).max() > 5, "the galaxy should get real colour, or the comparison proves little"
    assert np.abs(got - expected).max() < PARITY_LIMIT_AB == 0.5


def test_classifier_with_its_decode_in_onnxruntime_matches_pytorch(tiny_classifier_path, sdss_dir, pytorch_fp32, tmp_path):
    model = load_model(tiny_classifier_path, "cpu")
    assert model.config.head == "classify"
    path = tmp_path / "classifier.onnx"
    export_onnx(model, path)
    lightness = real_lightness(sdss_dir)
    got = OnnxColorizer(path).predict_ab(lightness)
    assert got.shape == (2, 2, *lightness.shape[-2:])  # ab, not bin logits: the annealed mean is in the graph
    assert np.abs(got - pytorch_fp32(model, lightness)).max() < PARITY_LIMIT_AB


def test_another_temperature_is_baked_into_the_classifier_graph(tiny_classifier_path, sdss_dir, pytorch_fp32, tmp_path, capsys):
    path = tmp_path / "hot.onnx"
    assert main(["export", "--onnx", str(path), "--model", str(tiny_classifier_path), "--temperature", "1.0", "-q"]) == 0
    model = load_model(tiny_classifier_path, "cpu").with_temperature(1.0)
    runner = OnnxColorizer(path)
    assert runner.config.temperature == 1.0
    lightness = real_lightness(sdss_dir, count=1)
    assert np.abs(runner.predict_ab(lightness) - pytorch_fp32(model, lightness)).max() < PARITY_LIMIT_AB


def test_one_file_colours_any_batch_and_size(shipped_onnx, sdss_dir, pytorch_fp32):
    model = load_model(shipped_model_path(), "cpu")
    runner = OnnxColorizer(shipped_onnx)
    real = real_lightness(sdss_dir)
    for lightness in (real[:1, :, :100, :150], real[:, :, 3:240, 10:251]):  # neither side a multiple of 16
        got = runner.predict_ab(lightness)
        assert got.shape == (lightness.shape[0], 2, *lightness.shape[-2:])
        assert np.abs(got - pytorch_fp32(model, lightness)).max() < PARITY_LIMIT_AB


def test_the_graph_itself_has_named_dynamic_axes_and_self_describing_metadata(shipped_onnx):
    import onnx

    proto = onnx.load(str(shipped_onnx))
    shape = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert (proto.graph.input[0].name, shape) == ("lightness", ["batch", 1, "height", "width"])
    assert [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == ["batch", 2, "height", "width"]
    described = json.loads({p.key: p.value for p in proto.metadata_props}["galcolor"])
    multiple = described["size_multiple"]
    assert multiple == load_model(shipped_model_path(), "cpu").config.size_multiple  # what a runner must pad to
    assert described["model_config"]["head"] == "regress"

    runner = OnnxColorizer(shipped_onnx)
    for batch, height, width in ((1, 2 * multiple, 3 * multiple), (3, 4 * multiple, multiple)):  # the bare graph, sizes it was not traced at
        assert runner.run_graph(np.full((batch, 1, height, width), 0.3, np.float32)).shape == (batch, 2, height, width)


def test_cli_export_writes_a_usable_file_and_reports_json(tiny_model_path, tmp_path, capsys):
    path = tmp_path / "deploy" / "tiny.onnx"  # a folder that does not exist yet
    assert main(["export", "--onnx", str(path), "--model", str(tiny_model_path), "--json"]) == 0
    captured = capsys.readouterr()
    report = strict_json(captured.out)
    assert report["onnx"] == str(path) and report["bytes"] == path.stat().st_size
    assert report["max_abs_ab_diff_vs_pytorch_fp32"] < PARITY_LIMIT_AB
    assert report["size_multiple"] == 4  # depth 2
    assert [p.name for p in path.parent.iterdir()] == ["tiny.onnx"], "no temporary file left beside it"
    ab = OnnxColorizer(path).predict_ab(np.full((1, 1, 30, 22), 50.0, np.float32))
    assert ab.shape == (1, 2, 30, 22) and np.isfinite(ab).all()

    assert main(["export", "--onnx", str(path), "--model", str(tiny_model_path), "-q"]) == 0
    assert capsys.readouterr() == ("", ""), "--quiet prints nothing on success"


@pytest.mark.slow
def test_the_parity_check_sees_the_network_even_where_caution_greys_the_probe(tmp_path, monkeypatch):
    """The shipped model's caution fades the synthetic probe to exactly 0 in PyTorch and ONNX alike,
    so a graph that got the network wrong would have passed with "max |Δab| 0"."""
    from galcolor.inference import export

    run_graph = export.OnnxColorizer.run_graph
    monkeypatch.setattr(export.OnnxColorizer, "run_graph", lambda self, x: run_graph(self, x) * 1.5)  # wrong colour, right grey
    with pytest.raises(GalcolorError, match="differs from PyTorch"):
        export.export_onnx(load_model(shipped_model_path(), "cpu"), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_cli_export_quiet_prints_nothing_even_from_the_exporter(tmp_path):
    """Tracing the shipped model, torch's exporter logs a warning and dumps the traced graph
    (hundreds of lines) to stderr through a handler pytest does not capture: a separate process shows it."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "galcolor", "export", "--onnx", str(tmp_path / "m.onnx"), "-q"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and (tmp_path / "m.onnx").is_file()
    assert (done.stdout, done.stderr) == ("", "")


@pytest.mark.parametrize("problem", ["missing", "not_a_checkpoint"])
def test_cli_export_of_a_bad_model_is_one_line_exit_1_and_writes_nothing(problem, tmp_path, capsys):
    model = tmp_path / "model.safetensors"
    if problem == "not_a_checkpoint":
        model.write_text("not weights")
    out = tmp_path / "model.onnx"
    assert main(["export", "--onnx", str(out), "--model", str(model)]) == 1
    assert_one_line_error(capsys.readouterr().err, str(model))
    assert not out.exists()


def test_cli_export_to_an_unusable_path_is_one_line_exit_1(tiny_model_path, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for target in (tmp_path, blocker / "model.onnx"):  # a folder; a path below a file
        assert main(["export", "--onnx", str(target), "--model", str(tiny_model_path)]) == 1
        assert_one_line_error(capsys.readouterr().err, str(target))


def test_cli_export_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export"])  # --onnx is required
    assert exit_info.value.code == 2
    assert "--onnx" in capsys.readouterr().err


def test_files_that_are_not_galcolor_onnx_models_are_one_line_errors(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not a protobuf at all" * 10)
    foreign = tmp_path / "identity.onnx"
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(foreign))
    for path, fragment in ((tmp_path / "absent.onnx", "no such ONNX file"), (garbage, "not a readable ONNX model"),
                           (foreign, "not a galcolor ONNX model")):
        with pytest.raises(GalcolorError) as err:
            OnnxColorizer(path)
        message = str(err.value)
        assert message.startswith(str(path)) and fragment in message and "\n" not in message


def test_missing_onnxruntime_is_a_clear_error(shipped_onnx, tiny_model_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail as if absent
    with pytest.raises(GalcolorError, match="onnxruntime.*" + INSTALL_HINT.replace("[", r"\[").replace("]", r"\]")):
        OnnxColorizer(shipped_onnx)
    out = tmp_path / "tiny.onnx"
    assert main(["export", "--onnx", str(out), "--model", str(tiny_model_path)]) == 1
    assert_one_line_error(capsys.readouterr().err, "onnxruntime", INSTALL_HINT)
    assert not out.exists()


def test_bench_onnx_reports_both_runtimes_and_their_agreement(tiny_model_path, capsys):
    assert main(["bench", "onnx", "--model", str(tiny_model_path), "--device", "cpu", "--images", "2", "--batch-size", "2", "--json"]) == 0
    figures = strict_json(capsys.readouterr().out)["figures"]
    for name in ("pytorch_default", "pytorch_fp32", "onnxruntime_cpu_fp32"):
        assert figures[name]["images_per_s"] > 0
    assert figures["max_abs_ab_diff"]["within_limit"] is True
    assert figures["max_abs_ab_diff"]["vs_pytorch_fp32"] < PARITY_LIMIT_AB


def test_cli_reference_documents_export():
    from galcolor.app.cli_reference import render

    assert "## galcolor export" in render()


def test_an_opset_the_exporter_cannot_reach_is_refused_not_silently_changed(tiny_model_path, tmp_path, capsys):
    out = tmp_path / "old.onnx"
    assert main(["export", "--onnx", str(out), "--model", str(tiny_model_path), "--opset", "7"]) == 1
    assert_one_line_error(capsys.readouterr().err, str(out), "opset 7")
    assert not out.exists()


def test_a_cautious_model_fades_unfamiliar_images_in_onnxruntime_as_in_pytorch(shipped_onnx, sdss_dir, pytorch_fp32, tmp_path):
    """Colour faded towards grey where an image is unlike the training set, and scaled by the
    saturation, is part of what predict_ab returns, so it is part of the graph too."""
    import dataclasses

    from galcolor.models import caution as caution_module

    model = load_model(shipped_model_path(), "cpu")
    real = real_lightness(sdss_dir)
    lightness = torch.cat([real, real * 0.3 + 20])  # the same galaxies washed out: farther from the training set
    with caution_module.pooled_features(model.network) as features, torch.inference_mode():
        predict_ab(model, lightness)
    pooled = features.mean()
    plain = caution_module.Caution(pooled[0], torch.eye(pooled.shape[1]) / pooled.var(0).mean(), torch.tensor([0.0, 1.0]))
    distances = plain.distance(pooled)
    caution = dataclasses.replace(plain, limits=torch.tensor([float(distances.min()) * 1.01, float(distances.max()) * 1.1]))
    cautious = dataclasses.replace(model, caution=caution, caution_strength=1.5, saturation=0.8)
    path = tmp_path / "cautious.onnx"
    export_onnx(cautious, path)

    expected = pytorch_fp32(cautious, lightness)
    unfaded = pytorch_fp32(model.with_style(0.0, 1.0), lightness)  # the shipped model has its own caution
    assert np.abs(expected).max(axis=(1, 2, 3)).min() < 0.5 * np.abs(unfaded).max(axis=(1, 2, 3)).min(), "some image must fade"
    assert np.abs(OnnxColorizer(path).predict_ab(lightness) - expected).max() < PARITY_LIMIT_AB
