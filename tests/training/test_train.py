"""Tests for galcolor.train: the loop learns, writes a complete run folder, resumes exactly, and
refuses what would lose work."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import galcolor.training.losses as losses_module
import galcolor.training.trainer as train_module
from galcolor.models.checkpoint import load_checkpoint
from galcolor.color.lab import normalise_ab, normalise_lightness, rgb_to_lab
from galcolor.models.config import ModelConfig
from galcolor.training.config import TrainConfig
from galcolor.training.data import load_split, training_batches
from galcolor.errors import GalcolorError
from galcolor.models import build_model
from galcolor.training.trainer import train
from galcolor.training.losses import weighted_ab_loss

TINY = ModelConfig(arch="unet", base_width=4, depth=2)
# 12 images -> 11 train + 1 val; 2 steps of 4 per epoch at crop 32: about a second per epoch.
QUICK = TrainConfig(epochs=2, batch_size=4, crop=32, num_threads=1)


def quiet(text: str) -> None:
    pass


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def prepare(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lab = rgb_to_lab(batch.float() / 255.0)
    return normalise_lightness(lab[:, :1]), normalise_ab(lab[:, 1:]), lab[:, :1]


# ---------------------------------------------------------------- the loss


def test_weighted_ab_loss_is_l1_with_sky_down_weighted():
    lightness = torch.tensor([[[[50.0, 5.0]]]])  # one galaxy pixel, one sky pixel
    target = torch.zeros(1, 2, 1, 2)
    pred = torch.tensor([[[[0.2, 0.4]], [[0.2, 0.4]]]])
    # galaxy error 0.2 (weight 1), sky error 0.4 (weight 0.25): (0.2 + 0.1) / 1.25
    assert weighted_ab_loss(pred, target, lightness, 0.25).item() == pytest.approx(0.24)
    assert weighted_ab_loss(pred, target, lightness, 1.0).item() == pytest.approx(0.3)
    assert weighted_ab_loss(target, target, lightness, 0.25).item() == 0.0


def test_weighted_ab_loss_on_pure_sky_with_zero_sky_weight_is_finite():
    """sky_weight=0 (ignore the sky) must not turn an all-sky batch into a NaN that stops training."""
    lightness = torch.full((2, 1, 4, 4), 3.0)
    loss = weighted_ab_loss(torch.rand(2, 2, 4, 4), torch.zeros(2, 2, 4, 4), lightness, 0.0)
    assert torch.isfinite(loss) and loss.item() == 0.0


# ---------------------------------------------------------------- learning


def test_tiny_unet_overfits_a_handful_of_real_galaxies(few_galaxies):
    """The model, the Lab targets, the loss and the optimiser together can learn galaxy colour."""
    dataset = load_split(few_galaxies, "all", max_images=4, progress=False)
    _, batch = next(training_batches(dataset, 4, 64, 0.0, torch.Generator().manual_seed(0)))
    x, target, lightness = prepare(batch)
    assert (lightness > 15).any()  # the centred crops hold galaxy light, not just sky

    torch.manual_seed(0)
    network = build_model(ModelConfig(arch="unet", base_width=8, depth=3))
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    network.train()
    losses = []
    for _ in range(120):
        loss = weighted_ab_loss(network(x), target, lightness, 0.25)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        final_train = weighted_ab_loss(network(x), target, lightness, 0.25).item()
        network.eval()
        final_eval = weighted_ab_loss(network(x), target, lightness, 0.25).item()
        grey = weighted_ab_loss(torch.zeros_like(target), target, lightness, 0.25).item()
    assert all(math.isfinite(v) for v in losses)
    assert final_train < losses[0] / 10, f"loss only went from {losses[0]:.4f} to {final_train:.4f}"
    # It learned colour, not just "predict grey": the eval-mode prediction beats grey clearly.
    assert final_eval < grey / 2, f"eval loss {final_eval:.4f} vs grey {grey:.4f}"


# ---------------------------------------------------------------- train() end to end


def test_train_writes_a_complete_run_folder(few_galaxies, tmp_path):
    run_dir = tmp_path / "run"
    lines: list[str] = []
    result = train(few_galaxies, run_dir, TINY, QUICK, progress=False, log=lines.append)

    assert sorted(os.listdir(run_dir)) == sorted(
        ["config.json", "log.csv", "best.safetensors", "last.safetensors", "last.state.safetensors"]
    )  # and no temporary files left behind
    config = json.loads((run_dir / "config.json").read_text())
    assert {k: config["model"][k] for k in ("arch", "base_width", "depth", "head")} == {
        "arch": "unet", "base_width": 4, "depth": 2, "head": "regress"}
    assert config["train"]["epochs"] == 2 and config["train"]["crop"] == 32
    assert config["train_images"] + config["val_images"] == 12 and config["val_images"] >= 1
    assert config["parameters"] > 0

    rows = read_log(run_dir / "log.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for row in rows:
        for key in ("train_loss", "val_loss", "de00_fg", "ab_fg", "psnr", "lr"):
            assert math.isfinite(float(row[key])), key
        assert 0 < float(row["de00_fg"]) < 100
    assert len(result.history) == 2
    assert [line.split()[:2] for line in lines if line.startswith("epoch")] == [["epoch", "1"], ["epoch", "2"]]

    best = load_checkpoint(result.best_path)
    assert result.best_path == run_dir / "best.safetensors"
    assert best.config == TINY
    assert best.lut_ab is not None and best.lut_ab.shape == (101, 2)
    assert torch.isfinite(best.lut_ab).all()
    assert best.metadata["epoch"] == result.best_epoch in (1, 2)
    assert best.metadata["val_metrics"]["de00_fg"] == pytest.approx(result.best_metrics["de00_fg"])
    # best is the epoch with the lowest validation de00_fg
    assert result.best_metrics["de00_fg"] == pytest.approx(min(float(r["de00_fg"]) for r in rows))
    last = load_checkpoint(result.last_path)
    assert last.metadata["epoch"] == 2
    # The network actually changed from its initialisation.
    torch.manual_seed(QUICK.seed)
    fresh = build_model(TINY).state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in last.network.state_dict().items())


class Interrupted(Exception):
    pass


def stop_after_first_epoch(text: str) -> None:
    """train() logs one 'epoch N ...' line after each epoch's files are written: stop right there."""
    if text.startswith("epoch"):
        raise Interrupted(text)


@pytest.mark.parametrize("config", [QUICK, dataclasses.replace(QUICK, adversarial_weight=0.1), dataclasses.replace(QUICK, ab_loss="de00")],
                         ids=["plain", "adversarial", "de00"])
def test_resume_continues_exactly_where_the_run_stopped(few_galaxies, tmp_path, config):
    """Also with a discriminator (its weights and optimizer travel in the resume state) and with
    the CIEDE2000 loss (the resumed run must keep training on it, not fall back to L1)."""
    straight = train(few_galaxies, tmp_path / "straight", TINY, config, progress=False, log=quiet)

    interrupted_dir = tmp_path / "interrupted"
    with pytest.raises(Interrupted):
        train(few_galaxies, interrupted_dir, TINY, config, progress=False, log=stop_after_first_epoch)
    assert load_checkpoint(interrupted_dir / "last.safetensors").metadata["epoch"] == 1
    assert len(read_log(interrupted_dir / "log.csv")) == 1

    lines: list[str] = []
    resumed = train(few_galaxies, interrupted_dir, resume=True, progress=False, log=lines.append)
    assert any(line.startswith("resuming") for line in lines)
    assert [line.split()[1] for line in lines if line.startswith("epoch")] == ["2"]  # epoch 1 is not redone

    a = load_file(str(straight.last_path))
    b = load_file(str(resumed.last_path))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5, rtol=0), key
    # The logs agree too (timing aside), and the resumed log holds both epochs.
    rows_a, rows_b = read_log(straight.run_dir / "log.csv"), read_log(interrupted_dir / "log.csv")
    assert len(rows_b) == 2
    for row_a, row_b in zip(rows_a, rows_b):
        for key in ("epoch", "train_loss", "val_loss", "de00_fg", "lr"):
            assert float(row_a[key]) == pytest.approx(float(row_b[key]), rel=1e-4, abs=1e-6), key
    assert resumed.best_epoch == straight.best_epoch


def test_a_finished_run_folder_is_not_overwritten(few_galaxies, tmp_path):
    run_dir = tmp_path / "run"
    config = TrainConfig(epochs=1, batch_size=4, crop=32, num_threads=1)
    train(few_galaxies, run_dir, TINY, config, progress=False, log=quiet)
    before = (run_dir / "last.safetensors").read_bytes()
    with pytest.raises(GalcolorError) as err:
        train(few_galaxies, run_dir, TINY, config, progress=False, log=quiet)
    assert "already holds" in str(err.value) and str(run_dir) in str(err.value)
    assert (run_dir / "last.safetensors").read_bytes() == before
    # Resuming a finished run trains nothing more and keeps the result.
    result = train(few_galaxies, run_dir, resume=True, progress=False, log=quiet)
    assert len(result.history) == 1
    assert (run_dir / "last.safetensors").read_bytes() == before


def test_resume_refuses_other_data_and_does_not_need_the_init_from_file(few_galaxies, tiny_model_path, tmp_path):
    import shutil

    start = tmp_path / "start.safetensors"
    shutil.copy(tiny_model_path, start)
    run_dir = tmp_path / "run"
    train(few_galaxies, run_dir, TINY, TrainConfig(epochs=1, batch_size=4, crop=32, num_threads=1, init_from=str(start)), progress=False, log=quiet)
    other = tmp_path / "other"
    shutil.copytree(few_galaxies, other)
    with pytest.raises(GalcolorError) as err:  # the split, look-up table and lightness reference come from the data
        train(other, run_dir, resume=True, progress=False, log=quiet)
    assert "was trained on" in str(err.value) and str(few_galaxies.resolve()) in str(err.value)
    start.unlink()  # the saved state holds the weights; the file it started from is not needed again
    assert len(train(few_galaxies, run_dir, resume=True, progress=False, log=quiet).history) == 1


def test_a_missing_folder_among_several_is_an_error(few_galaxies, tmp_path):
    with pytest.raises(GalcolorError) as err:
        train([few_galaxies, tmp_path / "non_spiralz"], tmp_path / "run", TINY, QUICK, progress=False, log=quiet)
    assert str(err.value) == f"{tmp_path / 'non_spiralz'}: no such folder"
    assert not (tmp_path / "run").exists()


def test_resume_with_nothing_to_resume_is_refused(few_galaxies, tmp_path):
    for run_dir in (tmp_path / "absent", tmp_path):
        with pytest.raises(GalcolorError) as err:
            train(few_galaxies, run_dir, TINY, QUICK, resume=True, progress=False, log=quiet)
        assert "nothing to resume" in str(err.value) and str(run_dir) in str(err.value)


def test_a_run_stopped_in_its_first_epoch_says_how_to_start_over(few_galaxies, tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise Interrupted("stopped during epoch 1")

    monkeypatch.setattr(train_module, "validate", killed)
    run_dir = tmp_path / "run"
    with pytest.raises(Interrupted):
        train(few_galaxies, run_dir, TINY, QUICK, progress=False, log=quiet)
    assert (run_dir / "config.json").exists() and not (run_dir / "last.state.safetensors").exists()
    with pytest.raises(GalcolorError, match="already holds"):
        train(few_galaxies, run_dir, TINY, QUICK, progress=False, log=quiet)
    with pytest.raises(GalcolorError) as err:
        train(few_galaxies, run_dir, resume=True, progress=False, log=quiet)
    assert "nothing to resume" in str(err.value) and "start over" in str(err.value)


def test_a_nan_loss_stops_training_with_a_clear_error(few_galaxies, tmp_path, monkeypatch):
    def nan_loss(pred, target, lightness, sky_weight):
        return (pred * float("nan")).mean()

    monkeypatch.setattr(losses_module, "weighted_ab_loss", nan_loss)  # what the trainer's regression_loss calls
    run_dir = tmp_path / "run"
    with pytest.raises(GalcolorError) as err:
        train(few_galaxies, run_dir, TINY, QUICK, progress=False, log=quiet)
    message = str(err.value)
    assert "loss" in message and "nan" in message and "epoch 1" in message
    assert "\n" not in message
    assert not (run_dir / "last.safetensors").exists()  # nothing half-trained is passed off as a model
    assert "no checkpoint was written" in message and "kept" not in message  # it used to claim one was kept


def test_a_nan_in_a_later_epoch_keeps_the_last_good_checkpoint(few_galaxies, tmp_path, monkeypatch):
    calls = {"n": 0}
    real_loss = losses_module.weighted_ab_loss

    def loss_that_breaks_in_epoch_2(pred, target, lightness, sky_weight):
        calls["n"] += 1
        loss = real_loss(pred, target, lightness, sky_weight)
        # epoch 1: 2 training steps + 1 validation batch; the 4th call is epoch 2's first step
        return loss * float("nan") if calls["n"] >= 4 else loss

    monkeypatch.setattr(losses_module, "weighted_ab_loss", loss_that_breaks_in_epoch_2)
    run_dir = tmp_path / "run"
    with pytest.raises(GalcolorError) as err:
        train(few_galaxies, run_dir, TINY, QUICK, progress=False, log=quiet)
    assert "epoch 2" in str(err.value)
    assert str(run_dir / "last.safetensors") in str(err.value)  # it says where the good model is
    kept = load_checkpoint(run_dir / "last.safetensors")
    assert kept.metadata["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in kept.network.state_dict().values())


def test_bad_train_configs_are_refused():
    for kwargs in (
        {"epochs": 0},
        {"batch_size": 0},
        {"crop": 40},
        {"crop": 8},
        {"val_fraction": 0.0},
        {"val_fraction": 1.0},
        {"crop_jitter": 1.5},
        {"crop_jitter": -0.1},
        {"sky_weight": -1.0},
        {"ab_loss": "l2"},
    ):
        with pytest.raises(GalcolorError):
            TrainConfig(**kwargs)


def test_the_de00_loss_trains_and_is_recorded_with_the_run(few_galaxies, tmp_path):
    """--ab-loss de00 changes what is learnt (it is not silently ignored) and the run records it."""
    de00 = train(few_galaxies, tmp_path / "de00", TINY, dataclasses.replace(QUICK, ab_loss="de00"), progress=False, log=quiet)
    l1 = train(few_galaxies, tmp_path / "l1", TINY, QUICK, progress=False, log=quiet)
    assert json.loads((tmp_path / "de00" / "config.json").read_text())["train"]["ab_loss"] == "de00"
    assert all(math.isfinite(float(row["train_loss"])) for row in read_log(tmp_path / "de00" / "log.csv"))
    # Same seed, data and schedule: only the loss differs, so the weights must too.
    de00_weights, l1_weights = load_file(de00.last_path), load_file(l1.last_path)
    assert any(not torch.equal(de00_weights[name], l1_weights[name]) for name in l1_weights)


def test_a_de00_loss_is_refused_for_a_classification_head(few_galaxies, tmp_path):
    with pytest.raises(GalcolorError, match="regress head"):
        train(few_galaxies, tmp_path / "run", dataclasses.replace(TINY, head="classify"),
              dataclasses.replace(QUICK, ab_loss="de00"), progress=False, log=quiet)
    assert not (tmp_path / "run").exists()


def test_a_classification_head_trains_saves_its_bins_and_decodes_to_ab(few_galaxies, tmp_path):
    """--loss classify: the checkpoint carries the ab bins it learnt and colours images with them."""
    import torch

    from galcolor.models.checkpoint import load_checkpoint
    from galcolor.inference.predict import predict_ab

    result = train(
        few_galaxies, tmp_path / "run", ModelConfig(arch="unet", base_width=4, depth=2, head="classify"),
        TrainConfig(epochs=1, batch_size=4, crop=64, num_threads=1), progress=False, log=lambda text: None,
    )
    model = load_checkpoint(result.best_path)
    assert model.config.head == "classify" and model.bins is not None
    assert model.config.num_bins == model.bins.size > 2
    ab = predict_ab(model, torch.full((1, 1, 40, 52), 50.0))
    assert ab.shape == (1, 2, 40, 52) and torch.isfinite(ab).all()
    # decoded colours lie within the bins the training data used
    assert ab.abs().max() <= model.bins.centres.abs().max() + 1e-3


def test_init_from_copies_the_trained_body_into_a_new_head(few_galaxies, tmp_path, tiny_model_path):
    """Fine-tuning a classifier from a regression model starts from its trained body, not from noise."""
    from galcolor.models.checkpoint import load_checkpoint
    from galcolor.training.trainer import initialise_from
    from galcolor.models import build_model

    source = load_checkpoint(tiny_model_path)
    classifier = build_model(ModelConfig(arch="unet", base_width=4, depth=2, head="classify", num_bins=30))
    copied = initialise_from(classifier, tiny_model_path)
    state = classifier.state_dict()
    assert copied == len(state) - 2  # all but the new head's weight and bias
    assert torch.equal(state["stem.0.weight"], source.network.state_dict()["stem.0.weight"])
    with pytest.raises(GalcolorError):
        initialise_from(build_model(ModelConfig(arch="seed")), tiny_model_path)


def test_the_patch_discriminator_judges_patches_and_trains():
    from galcolor.models.discriminator import PatchDiscriminator

    discriminator = PatchDiscriminator(width=8)
    lightness, ab = torch.rand(2, 1, 64, 64), torch.rand(2, 2, 64, 64) * 2 - 1
    verdict = discriminator(lightness, ab)
    assert verdict.shape[:2] == (2, 1) and 4 <= verdict.shape[-1] <= 8  # one logit per patch
    verdict.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in discriminator.parameters())


def test_adversarial_training_changes_the_result_and_keeps_the_discriminator_out_of_checkpoints(few_galaxies, tmp_path):
    plain = train(few_galaxies, tmp_path / "plain", TINY, QUICK, progress=False, log=quiet)
    adversarial = train(few_galaxies, tmp_path / "adv", TINY, dataclasses.replace(QUICK, adversarial_weight=0.5), progress=False, log=quiet)
    a, b = load_file(str(plain.last_path)), load_file(str(adversarial.last_path))
    assert a.keys() == b.keys()  # the model file holds the colourizer only
    assert any(not torch.allclose(a[k].float(), b[k].float()) for k in a if k.startswith("model."))
    assert any(k.startswith("disc.") for k in load_file(str(tmp_path / "adv" / "last.state.safetensors")))


def test_a_crop_the_network_cannot_take_is_refused_before_training(few_galaxies, tmp_path):
    """A working scale multiplies the padding multiple: depth 3 at scale 4 needs crops of 32 px."""
    with pytest.raises(GalcolorError, match="--crop 16 must be a multiple of 32"):
        train(few_galaxies, tmp_path / "run", ModelConfig(base_width=4, depth=3, working_scale=4),
              dataclasses.replace(QUICK, crop=16), progress=False, log=quiet)
    assert not (tmp_path / "run").exists()
