"""Tests for galcolor.checkpoint: a saved model comes back identical, anything else is refused clearly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from galcolor.models.checkpoint import FORMAT, LoadedModel, load_checkpoint, load_tensors_with_json, save_checkpoint, save_tensors_with_json
from galcolor.models.config import ModelConfig
from galcolor.errors import GalcolorError
from galcolor.models import build_model

TINY = ModelConfig(arch="unet", base_width=4, depth=2, input_lightness="raw")


def trained_looking(config: ModelConfig) -> torch.nn.Module:
    """A network whose weights AND batch-norm statistics differ from a fresh build's."""
    torch.manual_seed(1)
    network = build_model(config)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
        network.train()
        for _ in range(3):
            network(torch.rand(2, 1, 32, 32) * 0.8)
    return network.eval()


def assert_one_line_naming(err: pytest.ExceptionInfo, path: Path) -> str:
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message
    return message


@pytest.mark.parametrize(
    "config",
    [TINY, ModelConfig(arch="unet", base_width=8, depth=3, input_lightness="raw"), ModelConfig(arch="seed", input_lightness="raw")],
    ids=["unet-w4-d2", "unet-w8-d3", "seed"],
)
def test_round_trip_gives_bit_identical_outputs_and_restores_the_config(tmp_path, config):
    # Training leaves its network channels_last, and loading gives channels_last weights (faster
    # with channels_last input); the same layout on both sides makes the same kernels run.
    network = trained_looking(config).to(memory_format=torch.channels_last)
    x = torch.rand(2, 1, 32, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = network(x)
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, network, config, {"epoch": 7, "note": "ünïcode"})

    loaded = load_checkpoint(path)
    assert isinstance(loaded, LoadedModel)
    assert loaded.config == config  # arch, width and depth come back without any flags
    assert not loaded.network.training  # ready for inference: batch norm uses stored statistics
    assert loaded.metadata == {"epoch": 7, "note": "ünïcode"}
    assert loaded.source == path
    assert loaded.lut_ab is None
    with torch.no_grad():
        assert torch.equal(loaded.network(x), expected)
    for (name, ours), (_, theirs) in zip(network.state_dict().items(), loaded.network.state_dict().items()):
        assert torch.equal(ours, theirs), name  # running means/vars and counters included


def test_lut_round_trip(tmp_path):
    lut = torch.linspace(-20, 20, 202).reshape(101, 2)
    path = tmp_path / "with_lut.safetensors"
    save_checkpoint(path, build_model(TINY), TINY, lut_ab=lut.double())
    loaded = load_checkpoint(path)
    assert loaded.lut_ab is not None
    assert loaded.lut_ab.shape == (101, 2) and loaded.lut_ab.dtype == torch.float32
    assert torch.equal(loaded.lut_ab, lut)


def test_save_is_atomic_and_overwrites(tmp_path):
    folder = tmp_path / "new" / "folder"
    path = folder / "model.safetensors"
    save_checkpoint(path, build_model(TINY), TINY, {"version": 1})
    save_checkpoint(path, build_model(TINY), TINY, {"version": 2})  # replacing an existing file
    assert os.listdir(folder) == ["model.safetensors"]  # no temporary files left behind
    assert load_checkpoint(path).metadata == {"version": 2}


def test_failed_save_leaves_the_old_checkpoint_and_no_temp_file(tmp_path):
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, build_model(TINY), TINY, {"version": 1})

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        save_checkpoint(path, build_model(TINY), TINY, {"bad": Unserialisable()})
    assert os.listdir(tmp_path) == ["model.safetensors"]
    assert load_checkpoint(path).metadata == {"version": 1}


def test_training_state_round_trip(tmp_path):
    path = tmp_path / "last.state.safetensors"
    tensors = {"model.w": torch.arange(6.0).reshape(2, 3), "optim.0.step": torch.tensor(3.0)}
    payload = {"epoch": 3, "history": [{"loss": 0.5}], "nan": float("nan")}
    save_tensors_with_json(path, tensors, payload)
    back_tensors, back_payload = load_tensors_with_json(path)
    assert back_tensors.keys() == tensors.keys()
    assert all(torch.equal(back_tensors[k], v) for k, v in tensors.items())
    assert back_payload["epoch"] == 3 and back_payload["history"] == [{"loss": 0.5}]
    assert back_payload["nan"] != back_payload["nan"]  # NaN metrics survive the JSON header


@pytest.fixture
def good_checkpoint(tmp_path) -> Path:
    path = tmp_path / "good.safetensors"
    save_checkpoint(path, trained_looking(TINY), TINY, {"epoch": 1})
    return path


@pytest.mark.parametrize("keep", [0.5, 0.9, 10, 4])
def test_truncated_file_is_refused(tmp_path, good_checkpoint, keep):
    data = good_checkpoint.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(data[:cut])
    with pytest.raises(GalcolorError) as err:
        load_checkpoint(path)
    assert_one_line_naming(err, path)


@pytest.mark.parametrize("content", [os.urandom(4096), b"", b"{}" * 8, b"\x08" + b"\x00" * 7 + b"{}xxxxxx"])
def test_random_or_empty_bytes_are_refused(tmp_path, content):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(content)
    with pytest.raises(GalcolorError) as err:
        load_checkpoint(path)
    assert_one_line_naming(err, path)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt"])
def test_pickle_checkpoints_are_refused_without_unpickling(tmp_path, suffix, monkeypatch):
    path = tmp_path / f"model{suffix}"
    torch.save(build_model(TINY).state_dict(), path)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("load_checkpoint must never unpickle")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(GalcolorError) as err:
        load_checkpoint(path)
    message = assert_one_line_naming(err, path)
    assert "safetensors" in message


def test_foreign_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "someone_elses.safetensors"
    save_file({"weight": torch.zeros(3, 3)}, str(path))
    with pytest.raises(GalcolorError) as err:
        load_checkpoint(path)
    assert "not a galcolor checkpoint" in assert_one_line_naming(err, path)


def test_foreign_safetensors_with_other_metadata_is_refused(tmp_path):
    path = tmp_path / "hub_model.safetensors"
    save_file({"model.stem.0.weight": torch.zeros(4, 1, 3, 3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(GalcolorError) as err:
        load_checkpoint(path)
    assert_one_line_naming(err, path)


def test_missing_file_and_folder_are_refused(tmp_path):
    for path in (tmp_path / "absent.safetensors", tmp_path):
        with pytest.raises(GalcolorError) as err:
            load_checkpoint(path)
        assert_one_line_naming(err, path)


@pytest.mark.parametrize(
    "model_config",
    ['{"arch": "unet", "base_width": 4', "[1, 2]", '{"arch": "resnet"}', '{"arch": "unet", "base_width": "4"}', None],
    ids=["bad-json", "not-an-object", "unknown-arch", "wrong-type", "missing"],
)
def test_damaged_header_is_refused_naming_the_file(tmp_path, model_config):
    path = tmp_path / "damaged.safetensors"
    header = {"format": FORMAT}
    if model_config is not None:
        header["model_config"] = model_config
    tensors = {f"model.{k}": v.contiguous() for k, v in build_model(TINY).state_dict().items()}
    save_file(tensors, str(path), metadata=header)
    with pytest.raises(GalcolorError) as err:
        load_checkpoint(path)
    assert_one_line_naming(err, path)


@pytest.mark.parametrize(
    "stored, claimed",
    [
        (ModelConfig(arch="unet", base_width=8, depth=2, input_lightness="raw"), TINY),  # wrong widths
        (ModelConfig(arch="unet", base_width=4, depth=3, input_lightness="raw"), TINY),  # extra levels
        (TINY, ModelConfig(arch="unet", base_width=4, depth=3, input_lightness="raw")),  # missing levels
        (TINY, ModelConfig(arch="seed", input_lightness="raw")),  # another architecture
    ],
)
def test_weights_that_do_not_fit_the_config_are_refused(tmp_path, stored, claimed):
    path = tmp_path / "mismatch.safetensors"
    save_checkpoint(path, build_model(stored), claimed)
    with pytest.raises(GalcolorError) as err:
        load_checkpoint(path)
    message = assert_one_line_naming(err, path)
    assert "do not fit" in message
    assert len(message) < 400 + len(str(path))
    # The message says what is wrong, not just which class failed to load.
    assert any(word in message for word in ("size mismatch", "Missing key", "Unexpected key"))


def test_checkpoint_header_is_plain_json(tmp_path):
    """Other tools (and people) can read what a model is without galcolor."""
    from safetensors import safe_open

    path = tmp_path / "model.safetensors"
    save_checkpoint(path, build_model(TINY), TINY, {"epoch": 2})
    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata()
    assert header["format"] == FORMAT
    stored = json.loads(header["model_config"])
    assert {k: stored[k] for k in ("arch", "base_width", "depth", "head")} == {"arch": "unet", "base_width": 4, "depth": 2, "head": "regress"}
    assert json.loads(header["metadata"]) == {"epoch": 2}
