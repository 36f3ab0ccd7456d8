"""Folder runs: bad files beside good ones, outputs that would lose data, resuming, batching.

Each test builds its own input folder in tmp_path and checks what a user sees afterwards: which
files were written at which size, what stderr and --report say, and that inputs are untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galcolor.app.api import colorize, load_model
from galcolor.app.cli import main
from galcolor.io.decode import read_image
from galcolor.inference.pipeline import colorize_files, outcomes_as_dicts, plan_jobs


def digest_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "RGB", path
        return image.size


def in_gamut(rgb: np.ndarray, model) -> np.ndarray:
    """Pixels whose predicted Lab (the input's L, the model's ab) is inside sRGB, so no clipping alters L."""
    import torch
    from kornia.color import lab_to_rgb as unclipped_lab_to_rgb

    from galcolor.inference.arrays import colorize_lab

    predicted, _ = colorize_lab(np.asarray(rgb, dtype=np.float32), model)
    with torch.inference_mode():
        raw = unclipped_lab_to_rgb(torch.from_numpy(predicted).permute(2, 0, 1)[None], clip=False)[0].permute(1, 2, 0).numpy()
    return ((raw >= -1e-3) & (raw <= 1 + 1e-3)).all(axis=2)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def real_jpegs(few_galaxies) -> list[Path]:
    return sorted((few_galaxies / "spirals").glob("*.jpg")) + sorted((few_galaxies / "non_spirals").glob("*.jpg"))


def make_mixed_folder(root: Path, real: list[Path]) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Good files (relative path -> (W, H) of the input) and bad files, in a nested folder."""
    from astropy.io import fits

    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    good: dict[str, tuple[int, int]] = {}

    shutil.copy(real[0], root / "good.jpg")
    good["good.jpg"] = (256, 256)
    shutil.copy(real[1], root / "sub" / "gálaxy ünï 1.jpg")  # spaces and non-ASCII characters
    good["sub/gálaxy ünï 1.jpg"] = (256, 256)
    Image.fromarray((rng.integers(0, 65535, (30, 40))).astype(np.uint16)).save(root / "sub" / "grey16.png")
    assert Image.open(root / "sub" / "grey16.png").mode.startswith("I;16")
    good["sub/grey16.png"] = (40, 30)
    Image.fromarray(rng.integers(0, 255, (33, 21, 4), dtype=np.uint8), "RGBA").save(root / "sub" / "rgba.png")
    good["sub/rgba.png"] = (21, 33)
    Image.open(real[2]).resize((50, 45)).convert("P").save(root / "palette.png")
    assert Image.open(root / "palette.png").mode == "P"
    good["palette.png"] = (50, 45)
    sky = rng.normal(10.0, 1.0, (41, 37)).astype(np.float32)
    sky[3, 4], sky[5, 6], sky[20, 18] = np.nan, np.inf, 500.0
    fits.PrimaryHDU(sky).writeto(root / "sub" / "with_nan.fits")
    good["sub/with_nan.fits"] = (37, 41)
    Image.new("L", (1, 1), 200).save(root / "one_pixel.png")
    good["one_pixel.png"] = (1, 1)

    (root / "empty.jpg").write_bytes(b"")
    (root / "page.png").write_text("<!DOCTYPE html><html><body>Not Found</body></html>\n")
    data = real[3].read_bytes()
    (root / "sub" / "cut short.jpg").write_bytes(data[: len(data) // 2])
    fits.PrimaryHDU(np.full((8, 8), np.nan, dtype=np.float32)).writeto(root / "all_nan.fits")
    bad = ["empty.jpg", "page.png", "sub/cut short.jpg", "all_nan.fits"]
    (root / "README.txt").write_text("not an image: ignored, not reported")
    return good, bad


def output_of(relative: str) -> str:
    stem = relative[: -len(".fits")] if relative.endswith(".fits") else relative.rsplit(".", 1)[0]
    return stem + ".png"


def test_folder_with_bad_files_colours_the_rest_and_reports_each(tiny_model_path, real_jpegs, tmp_path, capsys):
    inputs, out = tmp_path / "in put", tmp_path / "out"
    good, bad = make_mixed_folder(inputs, real_jpegs)
    before = digest_tree(inputs)
    report = tmp_path / "r.json"

    code, _, err = run_cli(["colorize", str(inputs), "-o", str(out), "--model", str(tiny_model_path), "-q",
                            "--report", str(report), "--batch-size", "3"], capsys)
    assert code == 1

    # Every good file, coloured at its own size; nothing else in the output folder (no temporaries).
    assert files_under(out) == sorted(output_of(r) for r in good)
    for relative, size in good.items():
        assert png_size(out / output_of(relative)) == size, relative
    assert not [p for p in out.rglob("*") if p.name.startswith(".")], "temporary files left behind"

    # One stderr line per bad file, naming it.
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == len(bad), err
    assert "Traceback" not in err
    for relative in bad:
        named = [line for line in lines if str(inputs / relative) in line]
        assert len(named) == 1 and named[0].startswith("galcolor: "), (relative, err)

    # --report: every file's outcome.
    payload = json.loads(report.read_text())
    by_source = {Path(f["source"]).relative_to(inputs).as_posix(): f for f in payload["files"]}
    assert set(by_source) == set(good) | set(bad)
    for relative in good:
        assert by_source[relative]["status"] == "coloured"
        assert by_source[relative]["output"] == str(out / output_of(relative))
    for relative in bad:
        assert by_source[relative]["status"] == "failed"
        assert by_source[relative]["message"]
    assert payload["summary"]["coloured"] == len(good) and payload["summary"]["failed"] == len(bad)
    assert payload["summary"]["skipped"] == 0

    assert digest_tree(inputs) == before, "inputs must be byte-identical afterwards"


def test_grey_and_colour_inputs_keep_their_lightness(tiny_model_path, real_jpegs, tmp_path, capsys):
    from galcolor.color.lab import rgb_array_to_lab

    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(real_jpegs[0], inputs / "colour.jpg")
    Image.open(real_jpegs[0]).convert("L").save(inputs / "grey.png")
    assert run_cli(["colorize", str(inputs), "-o", str(tmp_path / "out"), "--model", str(tiny_model_path), "-q"], capsys)[0] == 0
    for name in ("colour", "grey"):
        source = read_image(next(inputs.glob(f"{name}.*"))).rgb
        coloured = np.asarray(Image.open(tmp_path / "out" / f"{name}.png"))
        keep = in_gamut(source, load_model(tiny_model_path))  # elsewhere sRGB clipping alters L (known bug)
        assert keep.sum() > 100
        delta = np.abs(rgb_array_to_lab(coloured / 255.0)[..., 0] - rgb_array_to_lab(source)[..., 0])
        assert delta[keep].max() <= 1.0, (name, float(delta[keep].max()))


def test_output_equal_to_input_is_refused_unless_overwrite(tiny_model_path, real_jpegs, tmp_path, capsys):
    folder = tmp_path / "pngs"
    folder.mkdir()
    Image.open(real_jpegs[0]).convert("L").save(folder / "grey.png")
    Image.open(real_jpegs[1]).resize((64, 48)).save(folder / "colour.png")
    before = digest_tree(folder)
    report = tmp_path / "r.json"

    code, _, err = run_cli(["colorize", str(folder), "-o", str(folder), "--model", str(tiny_model_path), "-q",
                            "--report", str(report)], capsys)
    assert code == 1
    assert digest_tree(folder) == before
    assert len(err.strip().splitlines()) == 2 and err.count("--overwrite") == 2
    assert {f["status"] for f in json.loads(report.read_text())["files"]} == {"failed"}

    code, _, err = run_cli(["colorize", str(folder), "-o", str(folder), "--model", str(tiny_model_path), "-q", "--overwrite"], capsys)
    assert code == 0, err
    assert files_under(folder) == ["colour.png", "grey.png"]
    after = digest_tree(folder)
    assert all(after[name] != before[name] for name in before)
    assert png_size(folder / "grey.png") == (256, 256) and png_size(folder / "colour.png") == (64, 48)


def test_two_inputs_onto_one_output_second_fails(tiny_model_path, real_jpegs, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(real_jpegs[0], folder / "a.jpg")
    Image.open(real_jpegs[1]).convert("L").save(folder / "a.png")
    before = digest_tree(folder)
    report = tmp_path / "r.json"

    code, _, err = run_cli(["colorize", str(folder), "-o", str(tmp_path / "out"), "--model", str(tiny_model_path), "-q",
                            "--report", str(report)], capsys)
    assert code == 1
    files = {Path(f["source"]).name: f for f in json.loads(report.read_text())["files"]}
    assert files["a.jpg"]["status"] == "coloured"
    assert files["a.png"]["status"] == "failed" and "a.jpg" in files["a.png"]["message"]
    assert err.count("galcolor: ") == 1 and "a.png" in err
    assert files_under(tmp_path / "out") == ["a.png"]
    # The one output is a.jpg's, not a.png's (which is a different galaxy).
    expected = colorize(read_image(folder / "a.jpg").rgb, load_model(tiny_model_path))
    assert np.abs(np.asarray(Image.open(tmp_path / "out" / "a.png")).astype(int) - expected).max() <= 1

    # Same folder as output: a.jpg's output would be the input a.png. Neither input may change.
    code, _, err = run_cli(["colorize", str(folder), "-o", str(folder), "--model", str(tiny_model_path), "-q"], capsys)
    assert code == 1
    assert digest_tree(folder) == before, "an input was overwritten by another input's output"
    assert "a.jpg" in err and "a.png" in err

    # Two explicit files from different folders with one name: one output, the second refused.
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(real_jpegs[2], other / "a.jpg")
    code, _, err = run_cli(["colorize", str(folder / "a.jpg"), str(other / "a.jpg"), "-o", str(tmp_path / "out2"),
                            "--model", str(tiny_model_path), "-q"], capsys)
    assert code == 1 and files_under(tmp_path / "out2") == ["a.png"]
    assert len(err.strip().splitlines()) == 1


def test_skip_existing_leaves_outputs_untouched(tiny_model_path, real_jpegs, tmp_path, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(real_jpegs[0], folder / "one.jpg")
    shutil.copy(real_jpegs[1], folder / "sub" / "two.jpg")
    assert run_cli(["colorize", str(folder), "-o", str(out), "--model", str(tiny_model_path), "-q"], capsys)[0] == 0
    old = 1_000_000_000  # an old, recognisable mtime: any rewrite would change it
    for path in out.rglob("*.png"):
        os.utime(path, ns=(old * 10**9, old * 10**9))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*.png")}
    shutil.copy(real_jpegs[2], folder / "three.jpg")  # a new input since the first run
    report = tmp_path / "r.json"

    code, _, err = run_cli(["colorize", str(folder), "-o", str(out), "--model", str(tiny_model_path), "-q",
                            "--skip-existing", "--report", str(report)], capsys)
    assert code == 0 and err == ""
    for path, (data, mtime) in before.items():
        assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime, path
    statuses = {Path(f["source"]).name: f["status"] for f in json.loads(report.read_text())["files"]}
    assert statuses == {"one.jpg": "skipped", "two.jpg": "skipped", "three.jpg": "coloured"}
    assert files_under(out) == ["one.png", "sub/two.png", "three.png"]
    summary = json.loads(report.read_text())["summary"]
    assert (summary["coloured"], summary["skipped"], summary["failed"]) == (1, 2, 0)


def test_skip_existing_redoes_a_file_whose_extras_are_missing(tiny_model_path, real_jpegs, tmp_path, capsys):
    """A run killed between a PNG and its extras, or an earlier run without them, must not count as done."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    shutil.copy(real_jpegs[0], folder / "one.jpg")
    assert run_cli(["colorize", str(folder), "-o", str(out), "--model", str(tiny_model_path), "-q"], capsys)[0] == 0
    assert files_under(out) == ["one.png"]
    args = ["colorize", str(folder), "-o", str(out), "--model", str(tiny_model_path), "-q", "--fits", "--skip-existing", "--json"]
    code, printed, _ = run_cli(args, capsys)
    assert code == 0 and json.loads(printed)["summary"]["coloured"] == 1
    assert files_under(out) == ["one.fits", "one.png"]
    code, printed, _ = run_cli(args, capsys)
    assert code == 0 and json.loads(printed)["summary"]["skipped"] == 1


def test_a_png_is_written_only_after_its_extras(tiny_model_path, real_jpegs, tmp_path, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    shutil.copy(real_jpegs[0], folder / "one.jpg")
    (out / "one.fits").mkdir(parents=True)  # the FITS output cannot be written
    code, _, err = run_cli(["colorize", str(folder), "-o", str(out), "--model", str(tiny_model_path), "-q", "--fits"], capsys)
    assert code == 1 and "one.fits" in err
    assert not (out / "one.png").exists()  # so --skip-existing will not take the file for done


def test_an_output_folder_inside_the_input_folder_is_not_coloured_again(tiny_model_path, real_jpegs, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(real_jpegs[0], folder / "one.jpg")
    for _ in range(2):
        assert run_cli(["colorize", str(folder), "-o", str(folder / "col"), "--model", str(tiny_model_path), "-q"], capsys)[0] == 0
    assert files_under(folder) == ["col/one.png", "one.jpg"]


def test_an_unwritable_output_fails_alone(tiny_model_path, real_jpegs, tmp_path, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(real_jpegs[0], folder / "ok.jpg")
    shutil.copy(real_jpegs[1], folder / "sub" / "blocked.jpg")
    out.mkdir()
    (out / "sub").write_text("a file where the output folder should be")
    code, _, err = run_cli(["colorize", str(folder), "-o", str(out), "--model", str(tiny_model_path), "-q"], capsys)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "blocked.png" in err and "Traceback" not in err
    assert files_under(out) == ["ok.png", "sub"]
    assert (out / "sub").read_text() == "a file where the output folder should be"


def test_batches_of_mixed_sizes_match_one_by_one(tiny_model_path, real_jpegs, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    # Sizes alternate in listing order, so batches must break at every size change.
    for index, source in enumerate(real_jpegs[:6]):
        image = Image.open(source)
        if index % 3 == 1:
            image = image.crop((90, 90, 143, 127))  # 53 x 37
        image.save(folder / f"{index:02d}.png")
    model = load_model(tiny_model_path)
    jobs, planned = plan_jobs([folder], tmp_path / "out", overwrite=False, skip_existing=False)
    assert planned == [] and len(jobs) == 6
    outcomes = colorize_files(jobs, model, batch_size=3, progress=False)
    assert sorted(o.source for o in outcomes) == sorted(str(j.source) for j in jobs)
    assert {o.status for o in outcomes} == {"coloured"}
    for job in jobs:
        alone = colorize(read_image(job.source).rgb, model)
        batched = np.asarray(Image.open(job.output))
        assert batched.shape == alone.shape
        assert np.abs(batched.astype(int) - alone).max() <= 1, job.source


def test_plan_jobs_maps_paths_and_reports_missing(tmp_path):
    (tmp_path / "in" / "a" / "b").mkdir(parents=True)
    for name in ("x.jpg", "a/y.PNG", "a/b/z.fits.gz", "a/.hidden.png", "a/notes.txt"):
        (tmp_path / "in" / name).write_bytes(b"not decoded at planning time")
    jobs, outcomes = plan_jobs([tmp_path / "in", tmp_path / "gone.jpg"], tmp_path / "out", overwrite=False, skip_existing=False)
    assert {j.output.relative_to(tmp_path / "out").as_posix() for j in jobs} == {"x.png", "a/y.png", "a/b/z.png"}
    assert [(o.status, o.source) for o in outcomes] == [("failed", str(tmp_path / "gone.jpg"))]
    assert outcomes_as_dicts(outcomes)[0]["message"].endswith("no such file or folder")
    assert not (tmp_path / "out").exists(), "planning writes nothing"


def test_max_pixels_refuses_large_images_only(tiny_model_path, real_jpegs, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(real_jpegs[0], folder / "big.jpg")  # 256 x 256 = 65,536 pixels
    Image.open(real_jpegs[1]).resize((40, 30)).save(folder / "small.png")
    code, out, err = run_cli(["colorize", str(folder), "-o", str(tmp_path / "out"), "--model", str(tiny_model_path),
                              "--max-pixels", "10000"], capsys)
    assert code == 1
    assert files_under(tmp_path / "out") == ["small.png"]
    assert "big.jpg" in err and "--max-pixels" in err and "Traceback" not in err
    assert "coloured 1, skipped 0, failed 1" in out  # the summary line, without -q


def test_every_symlink_in_a_folder_run_is_coloured_or_counted_as_skipped_by_name(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("L", (8, 8)).save(folder / "a.png")
    (folder / "b.png").symlink_to(folder / "a.png")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    jobs, outcomes = plan_jobs([folder], tmp_path / "out", overwrite=False, skip_existing=False)
    assert [job.source.name for job in jobs] == ["a.png"]
    assert sorted((Path(o.source).name, o.status) for o in outcomes) == [("b.png", "skipped"), ("loop", "skipped")]
    assert all(o.notes == [o.message] and o.message.startswith(o.source + ": ") for o in outcomes)


def test_an_output_that_a_symlink_would_lead_outside_the_output_folder_is_refused(tmp_path):
    from galcolor.inference.pipeline import plan_jobs

    inputs = tmp_path / "in" / "sub"
    inputs.mkdir(parents=True)
    Image.new("L", (8, 8), 40).save(inputs / "a.png")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)
    jobs, outcomes = plan_jobs([tmp_path / "in"], out, overwrite=False, skip_existing=False)
    assert jobs == [] and len(outcomes) == 1
    assert outcomes[0].status == "failed" and "symlink" in outcomes[0].message
    assert list(elsewhere.iterdir()) == []


def test_an_image_above_the_tile_size_is_streamed_to_the_same_png(tiny_model_path, real_jpegs, tmp_path):
    """Large images are read, coloured and written band by band (PngRowWriter); the file holds
    the pixels the in-memory API gives, and --fits still gets its whole cube."""
    from galcolor.inference.predict import TILE
    from galcolor.inference.pipeline import Extras

    folder = tmp_path / "in"
    folder.mkdir()
    Image.open(real_jpegs[0]).resize((TILE + 77, TILE + 20)).save(folder / "large.png")
    Image.open(real_jpegs[1]).save(folder / "small.jpg")
    model = load_model(tiny_model_path)
    jobs, _ = plan_jobs([folder], tmp_path / "out", overwrite=False, skip_existing=False)
    outcomes = colorize_files(jobs, model, progress=False, extras=Extras(fits=True))
    assert [o.status for o in outcomes] == ["coloured", "coloured"], outcomes
    for job in jobs:
        expected = colorize(read_image(job.source).rgb, model)
        written = np.asarray(Image.open(job.output))
        assert written.shape == expected.shape
        assert np.abs(written.astype(int) - expected).max() <= 1, job.source
    from astropy.io import fits

    cube = fits.getdata(tmp_path / "out" / "large.fits")
    assert cube.shape == (3, TILE + 20, TILE + 77)
    np.testing.assert_allclose(cube[:, ::-1].transpose(1, 2, 0), np.asarray(Image.open(tmp_path / "out" / "large.png")) / 255.0, atol=1e-6)
    assert files_under(tmp_path / "out") == ["large.fits", "large.png", "small.fits", "small.png"]


def test_lanes_keep_job_order_and_restore_torch_threads(tiny_model_path, real_jpegs, tmp_path):
    """Several files coloured at once, each lane with its own copy of the network: a cautious
    model's verdict (from forward hooks) must still be each image's own."""
    import dataclasses

    import torch

    from galcolor.models.caution import Caution, pooled_features
    from galcolor.inference.predict import predict_ab

    folder = tmp_path / "in"
    folder.mkdir()
    for index, source in enumerate(real_jpegs[:6]):
        shutil.copy(source, folder / f"{index}.jpg")
    model = load_model(tiny_model_path)
    jobs, _ = plan_jobs([folder], tmp_path / "out", overwrite=False, skip_existing=False)
    pooled = []
    for job in jobs:
        lightness = torch.from_numpy(read_image(job.source).rgb).permute(2, 0, 1)[None]
        from galcolor.color.lab import rgb_to_lab

        with pooled_features(model.network) as features:
            predict_ab(model, rgb_to_lab(lightness)[:, :1])
        pooled.append(features.mean()[0])
    centre = torch.stack(pooled).mean(0)
    unfitted = Caution(centre, torch.eye(len(centre)), torch.tensor([0.0, 1.0]))
    distances = unfitted.distance(torch.stack(pooled))
    assert distances.max() > 1.2 * distances.min()
    cautious = dataclasses.replace(model, caution=Caution(centre, torch.eye(len(centre)),
                                                          torch.stack([distances.min() * 0.9, distances.max() * 1.1])))
    before = torch.get_num_threads()
    outcomes = colorize_files(jobs, cautious, workers=3, progress=False)
    assert torch.get_num_threads() == before
    assert [o.source for o in outcomes] == [str(j.source) for j in jobs]  # job order, whatever finished first
    assert {o.status for o in outcomes} == {"coloured"}
    for job in jobs:
        expected = colorize(read_image(job.source).rgb, cautious)
        assert np.abs(np.asarray(Image.open(job.output)).astype(int) - expected).max() <= 1, job.source


@pytest.mark.slow
@pytest.mark.parametrize(("sent", "exit_code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stopped_folder_run_stops_within_a_large_image_and_leaves_no_partial_file(tmp_path, sent, exit_code):
    """Ctrl-C (or a scheduler's SIGTERM) reaches only the main thread, while a lane colours a large
    image: the lane must give it up too, rather than finish it first, and delete its unfinished PNG,
    even when the signal comes again while the lanes are stopping."""
    import signal
    import subprocess
    import sys
    import time

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    rows = np.linspace(0, 200, 4000, dtype=np.float32)
    Image.fromarray((rows[:, None] * np.linspace(0.2, 1, 4000)[None, :]).astype(np.uint8)).save(folder / "big.png", compress_level=1)
    Image.new("L", (64, 64), 90).save(folder / "small.png")
    process = subprocess.Popen([sys.executable, "-m", "galcolor", "colorize", str(folder), "-o", str(out), "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        # Files are coloured in name order, one lane each: the small one is done within a second,
        # and a temporary file left after it is the large image's PNG, being written.
        while not ((out / "small.png").exists() and list(out.glob(".tmp-*.png"))) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()  # still colouring the large image
        process.send_signal(getattr(signal, sent))
        time.sleep(0.3)
        process.send_signal(getattr(signal, sent))  # impatient users press Ctrl-C twice; `timeout` signals twice too
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == exit_code, err
    assert "Traceback" not in err and "terminate called" not in err
    assert not (out / "big.png").exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".tmp-")] == []
