"""The `galcolor` command end to end, as a user runs it: exit codes, files written, messages.

A tiny model (conftest `tiny_model_path`, width 4, depth 2, one epoch) stands in for the shipped one,
which may not exist yet; the tests of the default-model path skip while it is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galcolor import __version__
from galcolor.app.api import load_model, shipped_model_path
from galcolor.app.cli import main
from galcolor.color.lab import rgb_array_to_lab

from conftest import SHARED_DATA

TINY = ["--width", "4", "--depth", "2", "--epochs", "1", "--batch-size", "4", "--crop", "64"]


def strict_json(text: str):
    """json.loads that refuses NaN/Infinity, which are not JSON and break other parsers."""

    def refuse(token: str):
        raise ValueError(f"non-JSON token {token} in output")

    return json.loads(text, parse_constant=refuse)


def lab_of(rgb8: np.ndarray) -> np.ndarray:
    return rgb_array_to_lab(np.asarray(rgb8, dtype=np.float32) / 255.0)


def in_gamut(rgb: np.ndarray, model) -> np.ndarray:
    """Pixels whose predicted Lab (the input's L, the model's ab) is inside sRGB, so no clipping alters L."""
    import torch
    from kornia.color import lab_to_rgb as unclipped_lab_to_rgb

    from galcolor.inference.arrays import colorize_lab

    predicted, _ = colorize_lab(np.asarray(rgb, dtype=np.float32), model)
    with torch.inference_mode():
        raw = unclipped_lab_to_rgb(torch.from_numpy(predicted).permute(2, 0, 1)[None], clip=False)[0].permute(1, 2, 0).numpy()
    return ((raw >= -1e-3) & (raw <= 1 + 1e-3)).all(axis=2)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    assert lines[0].startswith("galcolor: error:"), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ---------------------------------------------------------------------------------------------
# Entry points


def test_version_and_help_run_as_commands(tmp_path):
    version = subprocess.run([sys.executable, "-m", "galcolor", "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"galcolor {__version__}"

    script = Path(sys.executable).parent / "galcolor"
    command = [str(script)] if script.exists() else ([shutil.which("galcolor")] if shutil.which("galcolor") else None)
    if command is None:
        pytest.skip("the galcolor console script is not installed beside this Python")
    helped = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    for sub in ("demo", "colorize", "train", "evaluate"):
        assert sub in helped.stdout


def test_a_model_error_is_one_line_without_traceback_in_a_real_process(tmp_path):
    missing = tmp_path / "nope.safetensors"
    done = subprocess.run(
        [sys.executable, "-m", "galcolor", "colorize", str(tmp_path), "-o", str(tmp_path / "out"), "--model", str(missing)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    assert_one_line_error(done.stderr, str(missing))
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# train -> colorize -> evaluate


def test_train_colorize_evaluate_end_to_end(few_galaxies, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(few_galaxies), "--out", str(run), *TINY, "--json"]) == 0
    trained = strict_json(capsys.readouterr().out)
    assert trained["best_epoch"] == 1
    best = Path(trained["best"])
    assert best == run / "best.safetensors"
    for name in ("best.safetensors", "last.safetensors", "config.json", "log.csv"):
        assert (run / name).is_file(), name
    stored = strict_json((run / "config.json").read_text())["model"]
    assert (stored["arch"], stored["base_width"], stored["depth"]) == ("unet", 4, 2)

    # A folder with nested sub-folders: a colour JPEG at each level and a small odd-sized grey PNG.
    spirals = sorted((few_galaxies / "spirals").glob("*.jpg"))
    inputs = tmp_path / "inputs"
    (inputs / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(spirals[0], inputs / "top.jpg")
    shutil.copy(spirals[1], inputs / "sub" / "deeper" / "deep.jpg")
    grey_small = np.asarray(Image.open(spirals[2]).convert("L"))[100:137, 100:153]  # 37 rows x 53 columns
    Image.fromarray(grey_small, "L").save(inputs / "sub" / "odd.png")

    model = load_model(best)
    out = tmp_path / "coloured"
    assert main(["colorize", str(inputs), "-o", str(out), "--model", str(best), "-q"]) == 0
    assert capsys.readouterr() == ("", ""), "--quiet prints nothing on success"
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["sub/deeper/deep.png", "sub/odd.png", "top.png"]

    for source, target in [
        (inputs / "top.jpg", out / "top.png"),
        (inputs / "sub" / "deeper" / "deep.jpg", out / "sub" / "deeper" / "deep.png"),
        (inputs / "sub" / "odd.png", out / "sub" / "odd.png"),
    ]:
        with Image.open(target) as image:
            assert image.format == "PNG" and image.mode == "RGB"
            coloured = np.asarray(image)
        with Image.open(source) as original:
            assert (coloured.shape[1], coloured.shape[0]) == original.size
            original_rgb = np.asarray(original.convert("RGB"))
        # Only a and b change: wherever the prediction fits in sRGB, L is the input's to rounding.
        # (Elsewhere clipping alters L: see test_api.test_colorize_keeps_lightness_everywhere.)
        keep = in_gamut(original_rgb / 255.0, model)
        assert keep.sum() > 100
        delta_l = np.abs(lab_of(coloured)[..., 0] - lab_of(original_rgb)[..., 0])[keep]
        assert delta_l.max() <= 1.0, (source.name, float(delta_l.max()))
        assert np.ptp(coloured.astype(int), axis=2).max() > 0, "output should carry some colour"

    report = tmp_path / "report"
    assert main(["evaluate", str(few_galaxies), "--split", "all", "--max-images", "4", "--model", str(best),
                 "-o", str(report), "--examples", "2", "-q"]) == 0
    assert (report / "report.md").is_file() and (report / "examples.png").is_file()
    assert (report / "radial_profile.png").is_file() and "Colour that carries physics" in (report / "report.md").read_text()
    with Image.open(report / "examples.png") as figure:
        assert figure.format == "PNG"
    payload = strict_json((report / "report.json").read_text())
    metrics = payload["metrics"]
    assert list(metrics) == ["gray", "lut", "run/best"]
    for name, summary in metrics.items():
        assert summary["n_images"] == 4, name
        for key in ("psnr", "de00_fg", "ab_fg", "auc_fg", "dcf", "colour_r", "class_auc", "truth_class_auc"):
            assert key in summary, (name, key)
        assert summary["de00_fg"] is not None and summary["de00_fg"] > 0
        assert 0.0 <= summary["auc_fg"] <= 1.0
    markdown = (report / "report.md").read_text()
    for name in metrics:
        assert f"| {name} |" in markdown
    assert payload["images"] == 4 and payload["split"] == "all"


def test_colorize_json_summary_is_strict_json(tiny_model_path, few_galaxies, tmp_path, capsys):
    source = sorted((few_galaxies / "non_spirals").glob("*.jpg"))[0]
    assert main(["colorize", str(source), "-o", str(tmp_path / "o"), "--model", str(tiny_model_path), "--json"]) == 0
    result = strict_json(capsys.readouterr().out)
    assert result["summary"]["coloured"] == 1 and result["summary"]["failed"] == 0
    assert result["files"] == [{"source": str(source), "output": str(tmp_path / "o" / f"{source.stem}.png"),
                                "status": "coloured", "message": "",
                                "colour": {"survey": None, "survey_probability": None, "colour_kept": 1.0, "saturation": 1.0,
                                           "galaxy_colour": None, "galaxy_colour_from": "network"},
                                "science": None, "notes": []}]  # science: read only with --science


def test_colorize_with_nothing_to_do_fails_clearly(tiny_model_path, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    assert main(["colorize", str(empty), "-o", str(tmp_path / "o"), "--model", str(tiny_model_path), "-q"]) == 1
    assert "no image files found" in capsys.readouterr().err
    assert main(["colorize", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "o"), "--model", str(tiny_model_path), "-q"]) == 1
    err = capsys.readouterr().err
    assert "missing.jpg" in err and "Traceback" not in err


def test_evaluate_keeps_models_with_the_same_name_apart(tiny_model_path, few_galaxies, tmp_path, capsys):
    report = tmp_path / "report"
    assert main(["evaluate", str(few_galaxies), "--split", "all", "--max-images", "3", "--model", str(tiny_model_path),
                 "--model", str(tiny_model_path), "-o", str(report), "--examples", "0", "--json"]) == 0
    printed = strict_json(capsys.readouterr().out)
    metrics = strict_json((report / "report.json").read_text())["metrics"]
    assert list(metrics) == ["gray", "lut", "run/best", "run/best#2"]
    assert all(summary["n_images"] == 3 for summary in metrics.values())
    assert metrics["run/best"] == metrics["run/best#2"]
    assert set(printed["metrics"]) == set(metrics)
    assert not (report / "examples.png").exists()  # --examples 0


def test_evaluate_only_spirals_scores_the_spirals_of_the_same_split(tiny_model_path, few_galaxies, tmp_path, capsys):
    report = tmp_path / "report"
    assert main(["evaluate", str(few_galaxies), "--split", "all", "--only", "spirals", "--model", str(tiny_model_path),
                 "-o", str(report), "--examples", "0", "--json"]) == 0
    printed = strict_json(capsys.readouterr().out)
    assert printed["only"] == "spirals" and printed["images"] == len(list((few_galaxies / "spirals").glob("*.jpg")))
    science = strict_json((report / "report.json").read_text())
    assert "sf_precision" in science["colour_free_regions"] and "red_blue_auc" in science["metrics"]["run/best"]


def test_fit_science_writes_a_model_that_reads_its_colour(tiny_model_path, few_galaxies, tmp_path, capsys):
    out = tmp_path / "science.safetensors"
    assert main(["fit-science", str(few_galaxies), "--model", str(tiny_model_path), "--val-fraction", "0.5", "-o", str(out), "--json"]) == 0
    result = strict_json(capsys.readouterr().out)
    (survey, row), = result["surveys"].items()
    assert row["galaxies"] < 20 and "no P(red)" in row["note"]  # too few held-out galaxies to calibrate a probability on
    from galcolor.app.api import load_model

    model = load_model(out)
    assert model.point_sources_unshifted and model.metadata["science"]["red_threshold"][survey] == pytest.approx(row["red_threshold_b"])
    assert main(["fit-science", str(few_galaxies), "--model", str(out), "-o", str(out)]) == 1  # never over the model it extends


def test_a_report_folder_inside_the_data_folder_is_not_scored_next_time(tiny_model_path, few_galaxies, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(few_galaxies, data)
    args = ["evaluate", str(data), "--split", "all", "--model", str(tiny_model_path), "-o", str(data / "report"), "--json"]
    counts = []
    for _ in range(2):
        assert main(args) == 0
        counts.append(strict_json(capsys.readouterr().out)["images"])
    assert (data / "report" / "examples.png").exists() and counts == [12, 12]  # its figures are not galaxies


# ---------------------------------------------------------------------------------------------
# demo


def test_demo_with_a_model_writes_image_figure_and_report(tiny_model_path, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--model", str(tiny_model_path), "--json"]) == 0
    printed = strict_json(capsys.readouterr().out)  # one image: colour_r is undefined, printed as null
    with Image.open(out / "hubble_deep_field.colorized.png") as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == (1000, 872)
    assert (out / "examples.png").is_file() and (out / "report.md").is_file()
    report = strict_json((out / "report.json").read_text())
    assert set(report["metrics"]) == {"gray", "lut", "run/best"}
    assert report["metrics"]["run/best"]["n_images"] == 1
    assert report["metrics"]["run/best"]["colour_r"] is None
    assert set(printed["metrics"]) == set(report["metrics"])


def test_demo_adds_held_out_galaxies_of_each_training_folder(tiny_model_path, few_galaxies, tmp_path, capsys):
    """The tiny model records few_galaxies as its training folder: the demo shows galaxies of its
    val split (never trained on), scored beside the baselines, in the same figure as the HDF."""
    from galcolor.training.data import load_split

    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--model", str(tiny_model_path), "--json"]) == 0
    printed = strict_json(capsys.readouterr().out)
    held_out = printed["held_out"][few_galaxies.name]
    assert set(held_out) == {"gray", "lut", "run/best"}
    val_count = len(load_split(few_galaxies, "val", progress=False))
    assert held_out["run/best"]["n_images"] == min(2, val_count) >= 1
    with Image.open(out / "examples.png") as with_galaxies:
        height_with = with_galaxies.size[1]
    assert main(["demo", "-o", str(tmp_path / "alone"), "--model", str(tiny_model_path), "--held-out", "-q"]) == 0
    with Image.open(tmp_path / "alone" / "examples.png") as alone:
        assert height_with > alone.size[1]  # one more row per galaxy
    assert f"Held-out galaxies: {few_galaxies.name} ({min(2, val_count)}, from the held-out split of {few_galaxies})" in (out / "report.md").read_text()


def shipped_model_record() -> dict:
    """The shipped model's record of what it was trained on (folders, their surveys, the val fraction)."""
    if not shipped_model_path().exists():
        pytest.skip(f"the shipped model {shipped_model_path()} is not there yet (still being trained)")
    metadata = load_model(shipped_model_path(), "cpu").metadata
    train_config = metadata["train_config"]
    return {"data_dir": metadata["data_dir"],
            "train_config": {"survey_names": train_config["survey_names"], "val_fraction": train_config["val_fraction"]}}


def shipped_credits() -> list[dict[str, str]]:
    """The rows of demo_galaxies/CREDITS.md's table, one per shipped galaxy."""
    from galcolor.app.demo import shipped_galaxies_folder

    lines = (shipped_galaxies_folder() / "CREDITS.md").read_text().splitlines()
    rows = [[cell.strip().strip("`") for cell in line.strip().strip("|").split("|")] for line in lines if line.startswith("|")]
    header, body = rows[0], rows[2:]  # rows[1] is the |---| rule
    return [dict(zip(header, row)) for row in body]


def test_shipped_demo_galaxies_are_held_out_galaxies_of_the_shipped_model():
    """Each shipped galaxy lies in the val split of a folder the shipped model trained on (the key
    training hashes: the path in the folder without its suffix), so the model never saw it; each
    has its credit, and each of the shipped model's surveys has some."""
    from galcolor.app.demo import shipped_galaxies_folder
    from galcolor.training.split import split_of

    record = shipped_model_record()
    val_fraction = record["train_config"]["val_fraction"]
    trained_on = {(Path(folder).name, survey) for folder, survey in zip(record["data_dir"], record["train_config"]["survey_names"])}
    files = sorted(path.name for path in shipped_galaxies_folder().glob("*.jpg"))
    credits = shipped_credits()
    assert files and sorted(row["file"] for row in credits) == files
    for row in credits:
        assert row["file"] == f"{row['survey']}-{Path(row['original path']).stem}.jpg", row
        assert (row["folder"], row["survey"]) in trained_on, row
        assert split_of(Path(row["original path"]).with_suffix("").as_posix(), val_fraction) == "val", row
        assert row["credit"] and row["source"], row
        original = SHARED_DATA / row["folder"] / row["original path"]
        if original.is_file():  # where the data is here: the very same bytes
            assert original.read_bytes() == (shipped_galaxies_folder() / row["file"]).read_bytes(), row
    surveys = set(record["train_config"]["survey_names"])
    assert surveys == {"sdss", "decals", "hubble"}
    assert all(sum(row["survey"] == survey for row in credits) >= 2 for survey in surveys)


def test_package_data_ships_the_demo_galaxies():
    """A non-editable install copies only the files pyproject's package-data names."""
    import fnmatch
    import tomllib

    from galcolor.app.demo import shipped_galaxies_folder

    patterns = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["galcolor"]
    shipped = sorted(path for path in shipped_galaxies_folder().iterdir() if path.is_file())
    assert any(path.suffix == ".jpg" for path in shipped) and any(path.name == "CREDITS.md" for path in shipped)
    for path in shipped:
        assert any(fnmatch.fnmatch(f"demo_galaxies/{path.name}", pattern) for pattern in patterns), path.name


def test_demo_without_the_training_folders_shows_the_shipped_galaxies(tmp_path, capsys, monkeypatch):
    """A fresh install: a model that records the shipped model's training folders, none of them
    here, still shows and scores held-out galaxies of every one of its surveys: the shipped ones."""
    import galcolor.evaluation.evaluate
    from galcolor.app.demo import SHIPPED_SOURCE, run_demo
    from galcolor.models import build_model
    from galcolor.models.checkpoint import save_checkpoint
    from galcolor.models.config import ModelConfig

    record = shipped_model_record()
    monkeypatch.chdir(tmp_path)  # the recorded folders are relative (../shared/data/...): not found from here
    assert not any(Path(folder).exists() for folder in record["data_dir"])
    config = ModelConfig(arch="unet", base_width=4, depth=2, input_lightness="raw")  # canonical L would need a reference from data
    save_checkpoint(tmp_path / "fresh.safetensors", build_model(config), config, record)  # untrained: needs no data

    figure_rows = []  # the names of the figure's rows, as write_report hands them over
    draw = galcolor.evaluation.evaluate.comparison_figure
    monkeypatch.setattr(galcolor.evaluation.evaluate, "comparison_figure", lambda rows, path: (figure_rows.extend(row[0] for row in rows), draw(rows, path)))
    assert main(["demo", "-o", "demo", "--model", "fresh.safetensors", "--json"]) == 0
    printed = strict_json(capsys.readouterr().out)
    surveys = list(dict.fromkeys(record["train_config"]["survey_names"]))
    assert list(printed["held_out"]) == surveys
    report = (tmp_path / "demo" / "report.md").read_text()
    for survey in surveys:
        shipped = [row for row in shipped_credits() if row["survey"] == survey]
        assert printed["held_out"][survey]["fresh"]["n_images"] == len(shipped) >= 2
        assert f"## Held-out galaxies: {survey} ({len(shipped)}, {SHIPPED_SOURCE})" in report
        assert all(f"`{row['file']}`" in report for row in shipped)
    shipped_rows = [f"{row['survey']}: {Path(row['file']).stem.removeprefix(row['survey'] + '-')}" for row in shipped_credits()]
    assert figure_rows[0] == "Hubble Deep Field" and sorted(figure_rows[1:]) == sorted(shipped_rows)
    assert (tmp_path / "demo" / "examples.png").is_file()

    shown = run_demo(load_model(tmp_path / "fresh.safetensors", "cpu"), "fresh", tmp_path / "api", None, log=lambda text: None)
    assert shown["held_out_from"] == {survey: SHIPPED_SOURCE for survey in surveys}
    assert {survey: len(names) for survey, names in shown["held_out_galaxies"].items()} == {
        survey: printed["held_out"][survey]["fresh"]["n_images"] for survey in surveys}


def test_demo_names_a_missing_held_out_folder(tiny_model_path, tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo"), "--model", str(tiny_model_path), "--held-out", str(tmp_path / "nowhere"), "-q"]) == 1
    assert_one_line_error(capsys.readouterr().err, "nowhere")
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
def test_demo_with_the_shipped_model(tmp_path, capsys):
    if not shipped_model_path().exists():
        pytest.skip(f"the shipped model {shipped_model_path()} is not there yet (still being trained)")
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "-q"]) == 0
    with Image.open(out / "hubble_deep_field.colorized.png") as image:
        assert image.size == (1000, 872)
    metrics = strict_json((out / "report.json").read_text())["metrics"]
    # The shipped model's caution, and beside it the same model with caution off.
    assert set(metrics) == {"gray", "lut", "galcolor", "galcolor --style sdss"}
    assert abs(metrics["galcolor"]["de00_fg"] - metrics["gray"]["de00_fg"]) < 0.1  # HST is unlike SDSS: left nearly grey
    assert metrics["galcolor --style sdss"]["de00_fg"] > metrics["galcolor"]["de00_fg"]


def test_missing_shipped_model_is_a_clean_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("galcolor.app.api.shipped_model_path", lambda: tmp_path / "galcolor-unet.safetensors")
    assert main(["demo", "-o", str(tmp_path / "demo"), "-q"]) == 1
    assert_one_line_error(capsys.readouterr().err, "galcolor-unet.safetensors")
    assert not (tmp_path / "demo").exists()


# ---------------------------------------------------------------------------------------------
# usage errors (2) and user errors (1)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--frobnicate"],
        ["paint", "x"],
        ["colorize"],
        ["colorize", "x.jpg"],
        ["colorize", "x.jpg", "-o", "o", "--unknown-option"],
        ["colorize", "x.jpg", "-o", "o", "--batch-size", "0"],
        ["colorize", "x.jpg", "-o", "o", "--batch-size", "two"],
        ["colorize", "x.jpg", "-o", "o", "--max-pixels", "-5"],
        ["colorize", "x.jpg", "-o", "o", "--device", "tpu"],
        ["train", "data"],
        ["train", "data", "--out", "r", "--epochs", "0"],
        ["train", "data", "--out", "r", "--model", "resnet"],
        ["train", "data", "--out", "r", "--lr", "-1"],
        ["train", "data", "--out", "r", "--lr", "nan"],
        ["train", "data", "--out", "r", "--weight-decay", "-0.1"],
        ["train", "data", "--out", "r", "--sky-weight", "-1"],
        ["train", "data", "--out", "r", "--val-fraction", "1.5"],
        ["evaluate", "data", "--split", "test"],
        ["evaluate", "data", "--examples", "-1"],
        ["evaluate", "data", "--val-fraction", "0"],
        ["demo", "--out"],
        ["colorize", "x.png", "-o", "o", "--saturation", "1e308"],  # used to write a black image, losing the input's L
        ["colorize", "x.png", "-o", "o", "--temperature", "2"],
        ["colorize", "x.png", "-o", "o", "--temperature", "nan"],
        ["export", "--onnx", "m.onnx", "--temperature", "0"],
    ],
)
def test_usage_errors_exit_2(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "usage: galcolor" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir()), "a usage error must not write anything"


def test_bad_model_files_are_one_line_errors(tmp_path, capsys):
    text = tmp_path / "notes.safetensors"
    text.write_text("this is a text file, not a model\n" * 20)
    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"\x80\x04K\x01.")
    folder = tmp_path / "folder.safetensors"
    folder.mkdir()
    image = tmp_path / "x.png"
    Image.new("L", (8, 8)).save(image)
    for model in (tmp_path / "missing.safetensors", text, pickle, folder):
        for argv in (["colorize", str(image), "-o", str(tmp_path / "out")], ["demo", "-o", str(tmp_path / "demo")],
                     ["evaluate", str(tmp_path), "-o", str(tmp_path / "rep")]):
            assert main([*argv, "--model", str(model), "-q"]) == 1, (argv, model)
            assert_one_line_error(capsys.readouterr().err, str(model))
    assert not (tmp_path / "out").exists() and not (tmp_path / "demo").exists() and not (tmp_path / "rep").exists()


def test_bench_refuses_a_folder_as_its_json_file_before_measuring(tmp_path, capsys):
    assert main(["bench", "colorize", "--out-json", str(tmp_path), "-q"]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err, str(tmp_path))
    assert "is a folder" in err


def test_a_quiet_training_run_still_reports_the_files_it_skipped(few_galaxies, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(few_galaxies, data)
    (data / "spirals" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    assert main(["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--width", "4", "--depth", "2",
                 "--crop", "32", "--batch-size", "4", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "broken.jpg" in captured.err and "Traceback" not in captured.err


def test_an_evaluate_report_folder_that_is_a_file_is_refused_up_front(tmp_path, capsys):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    assert main(["evaluate", str(tmp_path / "no-data-needed"), "-o", str(taken), "-q"]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err, str(taken))
    assert "is a file, not a folder" in err and taken.read_text() == "mine"


def test_a_run_folder_given_as_model_points_to_its_best_checkpoint(tiny_model_path, tmp_path, capsys):
    run = tiny_model_path.parent
    assert main(["colorize", str(tmp_path), "-o", str(tmp_path / "out"), "--model", str(run), "-q"]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err, str(run))
    assert "is a folder" in err and str(run / "best.safetensors") in err
    state = run / "last.state.safetensors"
    assert state.is_file()
    assert main(["colorize", str(tmp_path), "-o", str(tmp_path / "out"), "--model", str(state), "-q"]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err, str(state))
    assert "training state" in err and str(run / "best.safetensors") in err


def test_cuda_asked_for_without_cuda_is_a_clean_error(tiny_model_path, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    assert main(["colorize", str(tmp_path), "-o", str(tmp_path / "o"), "--model", str(tiny_model_path), "--device", "cuda"]) == 1
    assert_one_line_error(capsys.readouterr().err, "cuda")


def test_train_refuses_a_folder_holding_a_run_and_a_file_as_run_folder(few_galaxies, tmp_path, capsys):
    held = tmp_path / "held"
    held.mkdir()
    (held / "config.json").write_text("{}")
    assert main(["train", str(few_galaxies), "--out", str(held), *TINY, "-q"]) == 1
    assert_one_line_error(capsys.readouterr().err, "--resume")
    assert (held / "config.json").read_text() == "{}"

    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    assert main(["train", str(few_galaxies), "--out", str(a_file), *TINY, "-q"]) == 1
    assert_one_line_error(capsys.readouterr().err, str(a_file))
    assert a_file.read_text() == "keep me"

    assert main(["train", str(tmp_path / "no_data"), "--out", str(tmp_path / "r"), *TINY, "-q"]) == 1
    assert_one_line_error(capsys.readouterr().err, "no_data")
    assert main(["train", str(few_galaxies), "--out", str(tmp_path / "r2"), "--resume", "-q"]) == 1
    assert_one_line_error(capsys.readouterr().err, "nothing to resume")


def test_interrupt_exits_130(tiny_model_path, tmp_path, capsys, monkeypatch):
    import galcolor.inference.pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(galcolor.inference.pipeline, "colorize_files", interrupted)
    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    assert main(["colorize", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--model", str(tiny_model_path), "-q"]) == 130
    assert capsys.readouterr().err.strip() == "galcolor: interrupted"
    assert not (tmp_path / "o").exists()


def test_a_model_named_like_a_baseline_is_scored_on_its_own(tiny_model_path, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(tiny_model_path, tmp_path / "gray.safetensors")
    assert main(["demo", "-o", "d", "--model", "gray.safetensors", "-q"]) == 0
    metrics = strict_json((tmp_path / "d" / "report.json").read_text())["metrics"]
    assert list(metrics) == ["gray", "lut", "gray#2"]
    assert metrics["gray"]["n_images"] == metrics["gray#2"]["n_images"] == 1
    assert metrics["gray"]["de00_fg"] != metrics["gray#2"]["de00_fg"]
