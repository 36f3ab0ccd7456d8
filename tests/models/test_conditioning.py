"""Tests for survey conditioning and the global pathway: a named survey changes the colour, auto mode
is the recogniser's mix, configs survive JSON, and conditioned models go through checkpoints, inference and ONNX."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from galcolor.models import build_model
from galcolor.models.config import ModelConfig, from_dict, to_dict

SURVEYS = ("sdss", "decals", "hst")


def _with_film(config: ModelConfig, seed: int = 0) -> torch.nn.Module:
    """A conditioned network whose FiLM maps are no longer the zero they start at (as after training)."""
    torch.manual_seed(seed)
    model = build_model(config).eval()
    with torch.no_grad():
        for film in model.conditioning.films:
            film.to_params.weight.normal_(0.0, 0.5)
    return model


def test_a_new_conditioned_network_starts_as_the_plain_one():
    """FiLM starts as identity, so adding surveys to a config changes nothing until training moves it."""
    torch.manual_seed(0)
    plain = build_model(ModelConfig(base_width=4, depth=2)).eval()
    conditioned = build_model(ModelConfig(base_width=4, depth=2, surveys=SURVEYS, global_pathway=True)).eval()
    conditioned.load_state_dict(plain.state_dict(), strict=False)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(conditioned(x), plain(x), atol=0, rtol=0)
        torch.testing.assert_close(conditioned(x, survey=torch.eye(3)[[0, 2]]), plain(x), atol=0, rtol=0)


def test_naming_a_different_survey_changes_the_colour():
    model = _with_film(ModelConfig(base_width=4, depth=2, surveys=SURVEYS))
    x = torch.rand(1, 1, 32, 32).repeat(2, 1, 1, 1)
    with torch.no_grad():
        sdss, decals = model(x, survey=torch.eye(3)[[0, 1]])
        again = model(x[:1], survey=torch.eye(3)[[0]])[0]
    assert (sdss - decals).abs().max() > 1e-3
    torch.testing.assert_close(sdss, again)  # the survey weights act per image, not across the batch


@pytest.mark.parametrize("global_pathway", [False, True])
def test_auto_survey_is_the_recogniser_weighted_mix(global_pathway):
    model = _with_film(ModelConfig(base_width=4, depth=2, surveys=SURVEYS, global_pathway=global_pathway))
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        auto, logits = model(x, with_survey_logits=True)
        weights = torch.softmax(logits, dim=1)
        mixed = model(x, survey=weights)
        assert logits.shape == (2, 3)
        torch.testing.assert_close(auto, mixed, atol=1e-6, rtol=0)
        # ... and not simply the most likely survey alone (the embedding is a mix, not a vote)
        one_hot = torch.nn.functional.one_hot(logits.argmax(dim=1), 3).float()
        assert (auto - model(x, survey=one_hot)).abs().max() > 0


def test_the_recogniser_learns_which_survey_rendered_an_image():
    """Two 'surveys' that differ in how they stretch L: the cross-entropy on the logits separates them."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(base_width=4, depth=2, surveys=("faint", "bright"))).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    labels = torch.tensor([0, 1] * 4)
    for _ in range(30):
        base = torch.rand(8, 1, 16, 16)
        lightness = torch.where(labels[:, None, None, None] == 1, base**0.3, base**3)
        _, logits = model(lightness, survey=torch.eye(2)[labels], with_survey_logits=True)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    base = torch.rand(8, 1, 16, 16)
    with torch.no_grad():
        _, logits = model(torch.where(labels[:, None, None, None] == 1, base**0.3, base**3), with_survey_logits=True)
    assert (logits.argmax(dim=1) == labels).all()


def test_survey_weights_of_the_wrong_shape_are_refused():
    model = build_model(ModelConfig(base_width=4, depth=2, surveys=SURVEYS))
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        model(torch.rand(2, 1, 16, 16), survey=torch.ones(2, 2))
    plain = build_model(ModelConfig(base_width=4, depth=2, global_pathway=True))
    with pytest.raises(ValueError, match="without surveys"):
        plain(torch.rand(2, 1, 16, 16), survey=torch.ones(2, 1))
    _, logits = plain(torch.rand(2, 1, 16, 16), with_survey_logits=True)
    assert logits is None


def test_the_global_pathway_lets_the_whole_image_change_the_colour_of_a_patch():
    """Without it a pixel far from a change sees none of it through the U-Net's local windows; with it, it does."""
    x = torch.zeros(1, 1, 64, 64)
    changed = x.clone()
    changed[..., 48:, 48:] = 1.0  # a bright source far from the top-left corner
    outputs = {}
    for pathway in (False, True):
        config = ModelConfig(base_width=4, depth=1, surveys=("sdss",), global_pathway=pathway)
        model = _with_film(config)
        with torch.no_grad():
            outputs[pathway] = (model(changed) - model(x))[..., :4, :4].abs().max()
    assert outputs[False] == 0
    assert outputs[True] > 1e-6


def _galaxy_on_sky(side: int) -> torch.Tensor:
    """(1, 1, side, side) normalised L: a bright round galaxy (sigma 12 px) centred on faint sky."""
    yy, xx = torch.meshgrid(torch.arange(side) - side / 2, torch.arange(side) - side / 2, indexing="ij")
    return (0.1 + 0.75 * torch.exp(-(yy**2 + xx**2) / (2 * 12.0**2)))[None, None]


def test_flux_pooling_gives_a_training_crop_and_the_whole_frame_the_same_global_view():
    """Training sees 128 px crops, users colour whole frames of mostly sky. Pooled alike over every
    position, the sky of the frame pulls the global view away from the crop's; pooled by flux, the
    galaxy decides it in both. The stand-in features are the mean L under each bottleneck position,
    as a trained network's features differ between sky and galaxy."""
    import torch.nn.functional as F

    from galcolor.models.conditioning import pool

    frame = _galaxy_on_sky(256)
    crop = frame[..., 64:192, 64:192]
    shifts = {}
    for pooling in ("mean", "flux"):
        model = build_model(ModelConfig(base_width=4, depth=3, working_scale=2, global_pathway=True, global_pooling=pooling))
        views = [pool(F.avg_pool2d(image, model.size_multiple), model._pooling_weights(image)) for image in (frame, crop)]
        shifts[pooling] = ((views[0] - views[1]).abs() / views[1]).item()
    assert shifts["mean"] > 0.15  # the frame's sky dims the view: the mismatch this pooling is for
    assert shifts["flux"] < 0.1, shifts


def test_an_unknown_global_pooling_is_refused():
    from galcolor.errors import GalcolorError

    with pytest.raises(GalcolorError, match="global pooling"):
        ModelConfig(global_pathway=True, global_pooling="max")


def test_new_config_fields_survive_json_and_old_checkpoints_get_the_defaults():
    import json

    config = ModelConfig(working_scale=2, surveys=SURVEYS, global_pathway=True, global_pooling="flux")
    back = from_dict(ModelConfig, json.loads(json.dumps(to_dict(config))))
    assert back == config and isinstance(back.surveys, tuple)
    hash(back)  # frozen configs stay usable as keys
    old = {k: v for k, v in to_dict(ModelConfig()).items() if k not in ("working_scale", "surveys", "global_pathway", "global_pooling")}
    assert from_dict(ModelConfig, old) == ModelConfig()


def test_conditioned_checkpoint_rebuilds_itself_and_colours_through_inference(tmp_path):
    from galcolor.inference.predict import network_output
    from galcolor.models.checkpoint import load_checkpoint, save_checkpoint

    config = ModelConfig(base_width=4, depth=2, working_scale=2, surveys=SURVEYS, global_pathway=True, input_lightness="raw")
    model = _with_film(config)
    path = tmp_path / "conditioned.safetensors"
    save_checkpoint(path, model, config)
    loaded = load_checkpoint(path)
    assert loaded.config == config
    lightness = torch.rand(2, 1, 37, 45) * 100  # not a multiple of size_multiple (8): inference pads
    out = network_output(loaded, lightness)
    assert out.shape == (2, 2, 37, 45) and torch.isfinite(out).all()


@pytest.mark.slow  # the exporter takes about 25 s
def test_onnx_export_of_an_auto_survey_model(tmp_path):
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    from galcolor.inference.export import export_onnx
    from galcolor.models.checkpoint import load_checkpoint, save_checkpoint

    config = ModelConfig(base_width=4, depth=2, working_scale=2, surveys=SURVEYS, global_pathway=True, global_pooling="flux",
                         input_lightness="raw")
    path = tmp_path / "conditioned.safetensors"
    save_checkpoint(path, _with_film(config), config)
    written = export_onnx(load_checkpoint(path), tmp_path / "conditioned.onnx")
    assert written["size_multiple"] == 8  # 2**depth * working_scale
    assert written["max_abs_ab_diff_vs_pytorch_fp32"] <= 0.5  # export_onnx's own parity check, on a non-multiple size


def test_film_is_applied_to_each_decoder_level():
    model = build_model(ModelConfig(base_width=4, depth=3, surveys=SURVEYS))
    assert [film.to_params.out_features for film in model.conditioning.films] == [2 * up.conv[0].out_channels for up in model.ups]
    assert dataclasses.replace(ModelConfig(), surveys=SURVEYS).size_multiple == ModelConfig().size_multiple


def test_tiles_can_share_the_whole_image_condition():
    """Tiled inference: each tile alone would guess its own survey and global view; with the whole
    image's condition passed in, a tile is coloured as the whole image conditions it."""
    model = _with_film(ModelConfig(base_width=4, depth=2, surveys=SURVEYS, global_pathway=True))
    whole = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        condition, logits = model.condition_of(whole)
        assert condition.shape[0] == 1 and logits.shape == (1, 3)
        torch.testing.assert_close(model(whole, condition=condition), model(whole), atol=1e-6, rtol=0)
        tile = whole[..., :32, :32]
        shared = model(tile, condition=condition)
        alone = model(tile)
    assert (shared - alone).abs().max() > 0  # the tile's own pooled features differ from the image's
