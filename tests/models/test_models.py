"""Tests for galcolor.models: shapes, ranges and gradients of both networks, and their configs."""

from __future__ import annotations

import pytest
import torch

from galcolor.errors import GalcolorError
from galcolor.models import ARCHITECTURES, build_model, count_parameters
from galcolor.models.config import ModelConfig
from galcolor.models.seed import SeedColorizer
from galcolor.models.unet import UNetColorizer

CONFIGS = [
    ModelConfig(arch="seed"),
    ModelConfig(arch="unet", base_width=4, depth=2),
    ModelConfig(arch="unet", base_width=8, depth=3),
    ModelConfig(arch="unet", base_width=4, depth=1),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.arch}-w{c.base_width}-d{c.depth}")
@pytest.mark.parametrize("size", [(32, 32), (32, 48)])
def test_forward_backward_shape_range_and_gradients(config, size):
    torch.manual_seed(0)
    model = build_model(config)
    model.train()
    height, width = size
    assert height % config.size_multiple == 0 and width % config.size_multiple == 0
    lightness = torch.rand(2, 1, height, width)
    out = model(lightness)
    assert out.shape == (2, 2, height, width)  # non-square input catches swapped H and W
    assert torch.isfinite(out).all()
    assert out.min() >= -1.0 and out.max() <= 1.0  # tanh head: denormalised by AB_SCALE
    target = torch.rand(2, 2, height, width) * 0.2 - 0.1
    (out - target).abs().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} gets no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"
    # Every parameter tensor takes part: a dead branch would leave all-zero gradients.
    dead = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert not dead


@pytest.mark.parametrize("config", CONFIGS[:2], ids=lambda c: c.arch)
def test_eval_mode_is_deterministic_and_batch_independent(config):
    torch.manual_seed(0)
    model = build_model(config)
    # Move batch-norm statistics away from their defaults, then freeze them.
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(2, 1, 32, 32))
    model.eval()
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        whole = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
        again = model(x)
    torch.testing.assert_close(whole, alone, atol=1e-5, rtol=0)
    assert torch.equal(whole, again)


def test_channels_last_gives_the_same_output():
    """Training and inference run channels_last; the result must not depend on the layout."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="unet", base_width=4, depth=2)).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        plain = model(x)
        model = model.to(memory_format=torch.channels_last)
        fast = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(plain, fast, atol=1e-5, rtol=0)


def test_output_depends_on_the_input_lightness():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="unet", base_width=4, depth=2)).eval()
    with torch.no_grad():
        dark = model(torch.zeros(1, 1, 32, 32))
        bright = model(torch.ones(1, 1, 32, 32))
    assert (dark - bright).abs().max() > 1e-4


def test_size_multiple_matches_what_the_networks_need():
    assert ModelConfig(arch="seed").size_multiple == 4
    assert ModelConfig(arch="unet", base_width=4, depth=3).size_multiple == 8
    assert ModelConfig(arch="unet", base_width=4, depth=5).size_multiple == 32
    network = build_model(ModelConfig(arch="unet", base_width=4, depth=3))
    assert network.size_multiple == 8
    # The seed network cannot take a side that is not a multiple of 4; inference pads to it.
    with pytest.raises(RuntimeError):
        build_model(ModelConfig(arch="seed"))(torch.rand(1, 1, 30, 32))


def test_seed_parameter_count_matches_the_study():
    """The originating study's network has about 0.8 M parameters; the rebuild must match it."""
    count = count_parameters(build_model(ModelConfig(arch="seed")))
    assert 0.7e6 < count < 0.9e6


def test_unet_width_and_depth_change_the_network():
    small = count_parameters(build_model(ModelConfig(arch="unet", base_width=4, depth=2)))
    wider = count_parameters(build_model(ModelConfig(arch="unet", base_width=8, depth=2)))
    deeper = count_parameters(build_model(ModelConfig(arch="unet", base_width=4, depth=3)))
    assert small < wider and small < deeper
    # Convolution weights scale with width squared: doubling the width roughly quadruples the count.
    assert 3.0 < wider / small < 4.5


def test_build_model_returns_the_configured_class():
    assert isinstance(build_model(ModelConfig(arch="seed")), SeedColorizer)
    unet = build_model(ModelConfig(arch="unet", base_width=4, depth=3))
    assert isinstance(unet, UNetColorizer) and unet.depth == 3
    assert unet.stem[0].out_channels == 4
    assert set(ARCHITECTURES) == {"seed", "unet"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"arch": "resnet"},
        {"arch": "UNet"},
        {"arch": "unet", "base_width": 2},
        {"arch": "unet", "depth": 0},
        {"arch": "unet", "depth": 7},
    ],
)
def test_bad_model_configs_raise_galcolor_error(kwargs):
    with pytest.raises(GalcolorError) as err:
        ModelConfig(**kwargs)
    assert "\n" not in str(err.value)
    if kwargs["arch"] != "unet":
        assert "seed" in str(err.value) and "unet" in str(err.value)  # it names the choices


def test_the_options_at_their_dataclass_defaults_build_the_plain_unet_of_older_checkpoints():
    """Checkpoints written before working scale, surveys and the global pathway existed load with
    those options at their ModelConfig defaults (working_scale 1, no surveys, no pathway): that
    network must be exactly the plain U-Net they were trained as, same parameters, same colour."""
    import torch.nn.functional as F

    config = ModelConfig(base_width=8, depth=3)
    assert (config.working_scale, config.surveys, config.global_pathway) == (1, (), False)
    torch.manual_seed(0)
    network = build_model(config).eval()
    assert network.size_multiple == config.size_multiple == 2**config.depth
    for module in network.modules():  # trained-looking batch-norm statistics, not the identity of a fresh one
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)

    def plain_unet(lightness):  # the U-Net as it was before the new options, spelt out
        skips = [network.stem(lightness)]
        for down in network.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        x = skips.pop()
        for up in network.ups:
            x = up(x, skips.pop())
        return network.head(torch.cat([x, lightness], dim=1))

    lightness = torch.rand(1, 1, 64, 96)
    with torch.no_grad():
        assert torch.equal(network(lightness), plain_unet(lightness))
