"""Tests for runs under torchrun: real 2-process launches on CPU (gloo), the way a user starts them
(`python -m torch.distributed.run --nproc-per-node 2 --standalone -m galcolor ...`), and without
torchrun the helpers behave as the single process they are."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from galcolor.training import distributed
from galcolor.models.checkpoint import load_checkpoint
from galcolor.errors import GalcolorError
from galcolor.training.sharding import check_shareable, rank_share

LAUNCH_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                    "TORCHELASTIC_RUN_ID", "GROUP_RANK")
# About 20 training and 4 validation images, 5 steps of 2 images per rank per epoch, crop 32.
TINY_TRAIN = ["--max-images", "24", "--epochs", "2", "--crop", "32", "--batch-size", "4", "--width", "4", "--depth", "2"]
# With a discriminator as well: its gradients are averaged by hand and its state must resume too.
ADVERSARIAL = ["--adversarial-weight", "0.1"]
RUN_FILES = {"config.json", "log.csv", "best.safetensors", "last.safetensors", "last.state.safetensors"}

# Stops a 2-process run where a killed run would stop, after epoch 1's files are written, and
# leaves a digest of each rank's parameters at that point to compare across ranks.
STOP_AFTER_EPOCH_1 = """
import hashlib, sys
from pathlib import Path

import torch.distributed as dist

import galcolor.training.trainer as train_module
from galcolor.app.cli import main
from galcolor.errors import GalcolorError

real_run_epoch = train_module.Trainer.run_epoch


def run_epoch(self, epoch):
    if epoch == 2:
        digest = hashlib.sha256()
        for parameter in self.network.parameters():
            digest.update(parameter.detach().cpu().numpy().tobytes())
        Path(sys.argv[1], f"rank{dist.get_rank()}.sha256").write_text(digest.hexdigest())
        dist.barrier()  # both digests exist before either rank stops
        raise GalcolorError("stopped by the test after epoch 1")
    return real_run_epoch(self, epoch)


train_module.Trainer.run_epoch = run_epoch
sys.exit(main(sys.argv[2:]))
"""


def torchrun(*args: str, script: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Two CPU processes, as a user would start them; the test's own torchrun variables (if any) left out."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES}
    env["OMP_NUM_THREADS"] = "1"
    program = [str(script)] if script else ["-m", "galcolor"]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", *program, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def epoch_lines(text: str) -> list[str]:
    return [line.split()[1] for line in text.splitlines() if line.startswith("epoch ")]


# ---------------------------------------------------------------- without torchrun


@pytest.fixture
def no_torchrun(monkeypatch):
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_without_torchrun_everything_is_one_process(no_torchrun):
    assert not distributed.launched()
    assert (distributed.rank(), distributed.world(), distributed.local_rank(), distributed.is_main()) == (0, 1, 0, True)
    with distributed.session("cpu") as device:
        assert device == torch.device("cpu")
        assert not torch.distributed.is_initialized() and not distributed.active()
        assert distributed.shard([3, 1, 2]) == [3, 1, 2]
        assert distributed.gather(["a", "b"]) == ["a", "b"]
        assert distributed.run_on_main(lambda x: x + 1, 41) == 42
        value = torch.tensor(2.5)
        assert distributed.mean_over_ranks(value) is value
        network = torch.nn.Linear(2, 2)
        assert distributed.data_parallel(network, device) is network
    # torchrun --nproc-per-node 1 is one process too: no process group for a world of one
    for name, value in {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}.items():
        no_torchrun.setenv(name, value)
    assert not distributed.launched() and distributed.world() == 1


def test_a_broken_launch_environment_is_one_line(no_torchrun):
    for name, value in {"WORLD_SIZE": "two", "RANK": "0", "LOCAL_RANK": "0"}.items():
        no_torchrun.setenv(name, value)
    with pytest.raises(GalcolorError) as err:
        distributed.launched()
    assert "WORLD_SIZE" in str(err.value) and "\n" not in str(err.value)


def test_shards_of_a_list_are_disjoint_and_cover_it():
    items = list(range(11))
    shares = [distributed.shard(items, rank, 3) for rank in range(3)]
    assert sorted(sum(shares, [])) == items
    assert [len(s) for s in shares] == [4, 4, 3]


@pytest.mark.parametrize("count", [3, 7, 20, 21, 24])
@pytest.mark.parametrize("batch_size, world", [(4, 2), (6, 3), (6, 2), (4, 4), (4, 1)])
def test_rank_shares_of_an_epoch_are_disjoint_and_take_equal_steps(count, batch_size, world):
    order = torch.randperm(count, generator=torch.Generator().manual_seed(count)).tolist()
    shares = [rank_share(order, batch_size, rank, world) for rank in range(world)]
    if count < world:
        return  # refused before training (tested via the CLI below)
    flat = sum(shares, [])
    assert len(flat) == len(set(flat)) and set(flat) <= set(order)  # no image twice in one epoch
    assert len({len(s) for s in shares}) == 1 and shares[0]  # every rank takes the same number of steps
    if count >= batch_size:  # the global batch: as many images per epoch as one process trains on
        assert len(flat) == (count // batch_size) * batch_size
    if world == 1:
        assert shares[0] == order[: len(shares[0])]  # one rank's share is the one-process epoch


# ---------------------------------------------------------------- 2-process training (gloo)


@pytest.mark.slow
def test_a_two_process_run_writes_once_keeps_ranks_in_step_and_resumes_exactly(sdss_dir, tmp_path):
    """Adversarial, so that the discriminator (not DDP-wrapped) is covered by the same three launches."""
    straight = tmp_path / "straight"
    done = torchrun("train", str(sdss_dir), "--out", str(straight), *TINY_TRAIN, *ADVERSARIAL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert set(os.listdir(straight)) == RUN_FILES  # no temporary files, nothing per rank
    assert epoch_lines(done.stdout) == ["1", "2"]  # printed by rank 0 alone
    assert done.stdout.count("best epoch") == 1
    rows = read_log(straight / "log.csv")
    assert [row["epoch"] for row in rows] == ["1", "2"]
    config = json.loads((straight / "config.json").read_text())
    assert config["processes"] == 2 and config["train"]["batch_size"] == 4 and config["device"] == "cpu"
    assert load_checkpoint(straight / "best.safetensors").metadata["epoch"] in (1, 2)
    assert load_checkpoint(straight / "last.safetensors").metadata["epoch"] == 2

    interrupted = tmp_path / "interrupted"
    script = tmp_path / "stop_after_epoch_1.py"
    script.write_text(STOP_AFTER_EPOCH_1)
    stopped = torchrun(str(tmp_path), "train", str(sdss_dir), "--out", str(interrupted), *TINY_TRAIN, *ADVERSARIAL, script=script)
    assert stopped.returncode != 0 and "stopped by the test after epoch 1" in stopped.stderr
    digests = [(tmp_path / f"rank{rank}.sha256").read_text() for rank in (0, 1)]
    assert digests[0] == digests[1], "the ranks' parameters drifted apart: gradients were not averaged"
    assert load_checkpoint(interrupted / "last.safetensors").metadata["epoch"] == 1
    assert len(read_log(interrupted / "log.csv")) == 1

    resumed = torchrun("train", str(sdss_dir), "--out", str(interrupted), "--resume", *TINY_TRAIN)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("resuming") == 1 and epoch_lines(resumed.stdout) == ["2"]
    a, b = load_file(str(straight / "last.safetensors")), load_file(str(interrupted / "last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5, rtol=0), key
    a, b = load_file(str(straight / "last.state.safetensors")), load_file(str(interrupted / "last.state.safetensors"))
    discriminator = [key for key in a if key.startswith("disc.")]
    assert discriminator and set(discriminator) == {key for key in b if key.startswith("disc.")}
    for key in discriminator:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5, rtol=0), key
    resumed_rows = read_log(interrupted / "log.csv")
    assert len(resumed_rows) == 2
    for row_a, row_b in zip(rows, resumed_rows):
        for key in ("epoch", "train_loss", "val_loss", "de00_fg", "lr"):
            assert float(row_a[key]) == pytest.approx(float(row_b[key]), rel=1e-4, abs=1e-6), key


def test_a_global_batch_that_does_not_split_over_the_processes_is_refused(monkeypatch):
    monkeypatch.setattr(distributed, "world", lambda: 2)
    check_shareable(4, 20, Path("data"))
    with pytest.raises(GalcolorError) as err:
        check_shareable(3, 20, Path("data"))
    assert "--batch-size 3" in str(err.value) and "2 processes" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(GalcolorError, match="data: 1 training images cannot be shared by 2 processes"):
        check_shareable(4, 1, Path("data"))


# ---------------------------------------------------------------- 2-process colorize


@pytest.mark.slow
def test_sharded_colorize_colours_every_file_once_and_reports_a_bad_one(few_galaxies, tiny_model_path, tmp_path):
    inputs = tmp_path / "in"
    sources = sorted(few_galaxies.rglob("*.jpg"))[:10]
    for index, source in enumerate(sources):
        target = inputs / ("nested" if index % 3 == 0 else "") / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    (inputs / "broken.jpg").write_bytes(b"not a jpeg at all")
    report = tmp_path / "report.json"

    done = torchrun("colorize", str(inputs), "-o", str(tmp_path / "out"), "--model", str(tiny_model_path),
                    "--report", str(report), "--json", "--batch-size", "2")
    assert done.returncode == 1  # a bad file, on whichever rank it fell
    printed = json.loads(done.stdout)  # one JSON document: rank 0 alone prints
    written = json.loads(report.read_text())
    assert printed["files"] == written["files"]
    files = written["files"]
    listed = [Path(entry["source"]).relative_to(inputs) for entry in files]
    expected = [p.relative_to(inputs) for p in inputs.rglob("*.jpg")]
    assert sorted(listed) == sorted(expected) and len(listed) == len(set(listed))  # each file once, none missed
    assert written["summary"] | {"seconds": 0, "images_per_s": 0} == {
        "coloured": 10, "skipped": 0, "failed": 1, "seconds": 0, "images_per_s": 0, "out": str(tmp_path / "out")}
    for entry in files:
        if entry["source"].endswith("broken.jpg"):
            assert entry["status"] == "failed" and entry["output"] is None
        else:
            assert entry["status"] == "coloured" and Path(entry["output"]).is_file()
    assert sum("broken.jpg" in line for line in done.stderr.splitlines() if line.startswith("galcolor:")) == 1


# ---------------------------------------------------------------- GPUs (NCCL)


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs (NCCL)")
def test_two_gpus_train_with_nccl_and_colour_their_shares(sdss_dir, few_galaxies, tmp_path):
    run = tmp_path / "run"
    done = torchrun("train", str(sdss_dir), "--out", str(run), "--device", "cuda", *TINY_TRAIN)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "config.json").read_text())["device"] == "cuda:0"
    assert [row["epoch"] for row in read_log(run / "log.csv")] == ["1", "2"]
    report = tmp_path / "report.json"
    coloured = torchrun("colorize", str(few_galaxies), "-o", str(tmp_path / "out"), "--model", str(run / "best.safetensors"),
                        "--device", "cuda", "--report", str(report), "-q")
    assert coloured.returncode == 0, coloured.stderr[-3000:]
    files = json.loads(report.read_text())["files"]
    assert len(files) == len({f["source"] for f in files}) == len(list(few_galaxies.rglob("*.jpg")))
