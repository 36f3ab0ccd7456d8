"""Faults from outside: SIGKILL in the middle of training and of a folder run, and damaged checkpoints.

Each command runs as a real `python -m galcolor` child process with one thread (OMP_NUM_THREADS=1,
--threads 1). Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from galcolor.errors import GalcolorError

STEP_TIMEOUT_S = 180  # one child process on a busy two-core machine (a tiny model: normally seconds)
POLL_S = 0.002


def _env() -> dict[str, str]:
    # One thread: without it a child on a loaded machine oversubscribes the cores and slows tenfold.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _galcolor(*args: str | Path, timeout: float = STEP_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "galcolor", *map(str, args)], capture_output=True, text=True,
                          env=_env(), timeout=timeout)


def _start(*args: str | Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "galcolor", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=_env())


def _kill_when(process: subprocess.Popen, ready, what: str) -> bool:
    """SIGKILL `process` as soon as ready() holds; False when it finished first. Bounded by STEP_TIMEOUT_S."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if ready():
                if process.poll() is not None:
                    return False
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
                return process.returncode == -signal.SIGKILL  # not killed: it exited just before
            if process.poll() is not None:
                stderr = process.stderr.read() if process.stderr else ""
                if process.returncode != 0:
                    pytest.fail(f"{what} failed before it could be killed (exit {process.returncode}): {stderr[-2000:]}")
                return False
            time.sleep(POLL_S)
        pytest.fail(f"{what}: not ready after {STEP_TIMEOUT_S} s")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()


def _temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(".tmp-*"))


# ---- (a) training killed with SIGKILL, then resumed ---------------------------------------------------------


TRAIN_ARGS = ("--width", "4", "--depth", "2", "--epochs", "3", "--batch-size", "4", "--crop", "32", "--threads", "1", "--quiet")


def _logged_epochs(run: Path) -> int:
    try:
        lines = (run / "log.csv").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return max(0, len([line for line in lines if line.strip()]) - 1)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.fixture(scope="module")
def uninterrupted_run(few_galaxies: Path, tmp_path_factory) -> Path:
    """The same training, never interrupted: what a killed and resumed run must end with."""
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    done = _galcolor("train", few_galaxies, "--out", run, *TRAIN_ARGS)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _logged_epochs(run) == 3
    return run


def _between_epochs(run: Path) -> bool:
    """The first epoch's checkpoint is complete (the log is written last): the kill lands in epoch 2's batches."""
    return (run / "last.state.safetensors").exists() and _logged_epochs(run) >= 1


def _during_a_checkpoint_write(run: Path) -> bool:
    """After epoch 1, while a later checkpoint is being written (its hidden temp file exists)."""
    return _logged_epochs(run) >= 1 and bool(_temp_files(run))


@pytest.mark.parametrize("moment", [_between_epochs, _during_a_checkpoint_write], ids=["between-epochs", "during-a-checkpoint-write"])
def test_training_killed_with_sigkill_resumes_to_the_same_weights(moment, uninterrupted_run: Path, few_galaxies: Path, tmp_path: Path) -> None:
    # The epochs take a fraction of a second, so a run may finish before the poll sees its moment: try again then.
    for attempt in range(1, 4):
        run = tmp_path / f"killed-{attempt}"
        process = _start("train", few_galaxies, "--out", run, *TRAIN_ARGS)
        killed = _kill_when(process, lambda: moment(run), "train")
        if killed and _logged_epochs(run) < 3:
            break
    else:
        if moment is _during_a_checkpoint_write:
            pytest.skip("three runs finished without the poll catching a checkpoint write in progress")
        pytest.fail("three training runs finished before they could be killed after their first epoch")
    epochs_at_kill = _logged_epochs(run)
    temps_at_kill = [p.name for p in _temp_files(run)]

    resumed = _galcolor("train", few_galaxies, "--out", run, "--resume", *TRAIN_ARGS)
    print(f"\ntraining killed {moment.__name__[1:].replace('_', ' ')} after {epochs_at_kill} of 3 epochs (attempt {attempt}), "
          f"temp files left by the kill: {temps_at_kill}; resume exit {resumed.returncode}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _logged_epochs(run) == 3

    expected, got = _weights(uninterrupted_run / "last.safetensors"), _weights(run / "last.safetensors")
    assert sorted(got) == sorted(expected)
    for name, tensor in expected.items():
        assert torch.allclose(got[name], tensor, atol=1e-5, rtol=0), f"{name} differs after kill + resume"
    assert not [p for p in _temp_files(run) if p.name not in temps_at_kill], "the resumed run left temp files of its own"
    left = [p.name for p in _temp_files(run)]
    assert not left, f"--resume should remove the half-written files a kill left: {left}"


# ---- (b) damaged checkpoints --------------------------------------------------------------------------------


def _truncated(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def _header_flipped(source: Path, target: Path) -> Path:
    """16 bytes inverted in the middle of the safetensors JSON header (after its 8-byte length)."""
    data = bytearray(source.read_bytes())
    header_length = int.from_bytes(data[:8], "little")
    assert 32 < header_length < len(data) - 8
    middle = 8 + header_length // 2
    for i in range(middle - 8, middle + 8):
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("damage", [_truncated, _header_flipped], ids=["truncated-to-half", "header-bytes-flipped"])
def test_a_damaged_checkpoint_gives_one_line_naming_the_file(damage, tiny_model_path: Path, tmp_path: Path) -> None:
    from galcolor.models.checkpoint import load_checkpoint

    bad = damage(tiny_model_path, tmp_path / "damaged.safetensors")
    with pytest.raises(GalcolorError) as err:
        load_checkpoint(bad)
    message = str(err.value)
    assert str(bad) in message and "\n" not in message, message

    image = tmp_path / "galaxy.png"
    Image.new("L", (24, 16), 90).save(image)
    out = tmp_path / "out"
    result = _galcolor("colorize", image, "-o", out, "--model", bad)
    lines = result.stderr.splitlines()
    print(f"\n{damage.__name__}: exit {result.returncode}, stderr: {result.stderr.strip()}")
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("galcolor: error: ") and str(bad) in lines[0]
    assert not out.exists() or not any(out.rglob("*.png"))


# ---- (c) a folder run killed with SIGKILL, then completed with --skip-existing -------------------------------


IMAGES = 30


def _outputs(out: Path) -> list[Path]:
    """The visible PNGs (temp files are hidden: '.tmp-<random>.png')."""
    return sorted(p for p in out.glob("*.png") if not p.name.startswith("."))


def _loads(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
            return image.format == "PNG" and image.size == (256, 256)
    except OSError:
        return False


def test_a_folder_run_killed_with_sigkill_leaves_only_complete_pngs(few_galaxies: Path, tiny_model_path: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    galaxies = sorted(few_galaxies.rglob("*.jpg"))
    for i in range(IMAGES):  # 256 x 256 grey PNGs: a few hundredths of a second each with the tiny model
        with Image.open(galaxies[i % len(galaxies)]) as image:
            image.convert("L").save(inputs / f"galaxy-{i:02d}.png")
    out = tmp_path / "out"

    for attempt in range(1, 4):
        if out.exists():
            for path in out.iterdir():
                path.unlink()
        process = _start("colorize", inputs, "-o", out, "--model", tiny_model_path, "--batch-size", "1", "-q")
        killed = _kill_when(process, lambda: out.is_dir() and len(_outputs(out)) >= 3, "colorize")
        if killed and len(_outputs(out)) < IMAGES:
            break
    else:
        pytest.fail("three folder runs finished before they could be killed")

    complete = _outputs(out)
    broken = [p.name for p in complete if not _loads(p)]
    leftovers = sorted(p.name for p in out.iterdir() if p not in complete)
    print(f"\nfolder run killed after {len(complete)} of {IMAGES} outputs (attempt {attempt}): "
          f"{IMAGES - len(complete)} not written, leftovers {leftovers}")
    assert not broken, f"incomplete PNGs after the kill: {broken}"
    assert all(name.startswith(".tmp-") for name in leftovers), leftovers  # hidden, never taken for an output

    rerun = _galcolor("colorize", inputs, "-o", out, "--model", tiny_model_path, "--batch-size", "1", "--skip-existing")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"coloured {IMAGES - len(complete)}, skipped {len(complete)}, failed 0" in rerun.stdout, rerun.stdout
    final = _outputs(out)
    verified = sum(_loads(p) for p in final)
    print(f"after --skip-existing: {len(final)} outputs, {verified} verified to load as 256x256 PNGs; "
          f"temp files now {[p.name for p in _temp_files(out)]}")
    assert [p.name for p in final] == [f"galaxy-{i:02d}.png" for i in range(IMAGES)]
    assert verified == IMAGES
    assert all(p.name.startswith(".tmp-") for p in out.iterdir() if p not in final)
