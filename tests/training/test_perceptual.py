"""The differentiable CIEDE2000 that `--ab-loss de00` trains on: it must give the metric's values
(scikit-image's, which evaluate reports) and gradients that lead towards the true colour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000

from galcolor.color.lab import denormalise_ab, normalise_ab
from galcolor.training.perceptual import ciede2000
from galcolor.training.losses import weighted_de00_loss


def as_planes(lab: np.ndarray) -> torch.Tensor:
    """(N, 3) Lab rows -> (3, N, 1) planes, the layout ciede2000 takes."""
    return torch.tensor(lab.T[:, :, None], dtype=torch.float32)


def test_matches_scikit_image_including_colourless_and_identical_pairs():
    rng = np.random.default_rng(0)
    reference = np.stack([rng.uniform(0, 100, 4000), rng.uniform(-80, 80, 4000), rng.uniform(-80, 80, 4000)], axis=-1)
    sample = reference + rng.normal(0, 10, reference.shape)
    sample[:, 0] = np.clip(sample[:, 0], 0, 100)
    sample[:500, 1:] = 0.0  # grey prediction of a coloured truth
    reference[500:1000, 1:] = 0.0  # coloured prediction of grey sky
    sample[1000:1500] = reference[1000:1500]  # perfect
    sample[1500:1600, 1] = -reference[1500:1600, 1]  # hue across the ±180° seam
    ours = ciede2000(as_planes(reference), as_planes(sample))[:, 0].numpy()
    np.testing.assert_allclose(ours, deltaE_ciede2000(reference, sample), atol=2e-3)


def test_sharma_published_pairs():
    """Pairs 1 and 7 of Sharma, Wu & Dalal (2005), table 1."""
    reference = np.array([[50.0, 2.6772, -79.7751], [50.0, 0.0, 0.0]])
    sample = np.array([[50.0, 0.0, -82.7485], [50.0, -1.0, 2.0]])
    ours = ciede2000(as_planes(reference), as_planes(sample))[:, 0]
    assert ours.tolist() == pytest.approx([2.0425, 2.3669], abs=1e-3)


def test_gradients_are_finite_where_hue_is_undefined():
    truth = torch.zeros(1, 3, 2, 2)
    truth[:, 0] = 40.0
    truth[0, 1:, 0, 0] = torch.tensor([5.0, -12.0])  # one coloured pixel; the rest grey
    predicted_ab = torch.zeros(1, 2, 2, 2, requires_grad=True)  # a grey start, as the network's sky
    ciede2000(truth, torch.cat([truth[:, :1], predicted_ab], dim=1)).sum().backward()
    assert torch.isfinite(predicted_ab.grad).all()


def test_descending_the_loss_recovers_the_true_colour():
    """Gradient steps on weighted_de00_loss from almost grey reach the truth's colour (scored by scikit-image)."""
    rng = np.random.default_rng(1)
    truth = torch.tensor(np.stack([rng.uniform(20, 90, (1, 8, 8)), rng.uniform(-30, 30, (1, 8, 8)), rng.uniform(-40, 30, (1, 8, 8))], axis=1),
                         dtype=torch.float32)
    # Normalised ab, as a regress head gives it: nearly grey, but a tanh output is never exactly 0,
    # where the chroma has no gradient.
    predicted = (1e-3 * torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(0))).requires_grad_()
    optimizer = torch.optim.Adam([predicted], lr=0.01)
    for _ in range(400):
        loss = weighted_de00_loss(predicted, truth, sky_weight=0.25)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    true_np = truth[0].permute(1, 2, 0).numpy().reshape(-1, 3)
    found = torch.cat([truth[:, :1], denormalise_ab(predicted.detach())], dim=1)[0].permute(1, 2, 0).numpy().reshape(-1, 3)
    grey = true_np.copy()
    grey[:, 1:] = 0.0
    assert deltaE_ciede2000(true_np, found).mean() < 0.05 * deltaE_ciede2000(true_np, grey).mean()


def test_loss_weights_sky_like_the_l1_loss():
    truth = torch.tensor([[[[60.0, 5.0]], [[10.0, 10.0]], [[-20.0, -20.0]]]])  # a galaxy pixel and a sky pixel
    grey = torch.zeros(1, 2, 1, 2)
    per_pixel = ciede2000(truth, torch.cat([truth[:, :1], grey], dim=1))[0, 0]
    expected = (per_pixel[0] + 0.25 * per_pixel[1]) / 1.25 / 110.0
    assert weighted_de00_loss(grey, truth, 0.25).item() == pytest.approx(expected.item(), rel=1e-5)
    assert weighted_de00_loss(normalise_ab(truth[:, 1:]), truth, 0.25).item() < 1e-5
