"""calibrate and fit-uncertainty read every folder a model of several surveys was trained on."""

import json

import numpy as np
from conftest import paler_copies
from PIL import Image

from galcolor.app.cli import main
from galcolor.models import caution as caution_module
from galcolor.training.data import load_folders


def noise_images(folder, count=6, size=48):
    folder.mkdir()
    for index in range(count):
        pixels = np.random.default_rng(index).integers(0, 256, (size, size)).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"noise-{index}.png")
    return folder


def test_calibrate_fits_its_gaussian_to_every_training_folder(tiny_model_path, few_galaxies, tmp_path, monkeypatch):
    pale = paler_copies(few_galaxies, tmp_path / "pale", chroma=0.25)
    seen = {}
    fit = caution_module.Caution.fit

    def counting_fit(train, val, others, *rest):
        seen["train"], seen["val"] = len(train), len(val)
        return fit(train, val, others, *rest)

    monkeypatch.setattr(caution_module.Caution, "fit", staticmethod(counting_fit))
    out = tmp_path / "c.safetensors"
    code = main(["calibrate", str(few_galaxies), str(pale), "--other", str(noise_images(tmp_path / "noise")),
                 "--model", str(tiny_model_path), "--val-fraction", "0.3", "-o", str(out), "-q"])
    assert code == 0
    folders = [few_galaxies, pale]
    assert seen["train"] == len(load_folders(folders, "train", 0.3, progress=False))
    assert seen["val"] == len(load_folders(folders, "val", 0.3, progress=False))
    assert seen["train"] > len(load_folders([few_galaxies], "train", 0.3, progress=False))


def test_fit_uncertainty_learns_from_every_training_folder(tiny_model_path, few_galaxies, tmp_path, capsys):
    pale = paler_copies(few_galaxies, tmp_path / "pale", chroma=0.25)
    out = tmp_path / "head.safetensors"
    code = main(["fit-uncertainty", str(few_galaxies), str(pale), "--model", str(tiny_model_path), "--epochs", "1",
                 "--val-fraction", "0.3", "-o", str(out), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["train_images"] == len(load_folders([few_galaxies, pale], "train", 0.3, progress=False))
    assert report["val_images"] == len(load_folders([few_galaxies, pale], "val", 0.3, progress=False))
