import pytest
import torch

from galcolor.color.quantize import AbBins, candidate_centres, classification_loss, count_bins


@pytest.fixture
def bins() -> AbBins:
    torch.manual_seed(0)
    ab = torch.cat([torch.randn(5000, 2) * 15, torch.randn(200, 2) * 5 + torch.tensor([0.0, -40.0])])
    return AbBins.from_counts(count_bins(ab))


def test_only_bins_the_data_uses_are_kept(bins):
    assert 10 < bins.size < candidate_centres().shape[0]
    assert torch.isclose(bins.prior.sum(), torch.tensor(1.0))
    assert (bins.prior > 0).all()


def test_decoding_a_one_hot_bin_gives_its_centre(bins):
    for q in (0, bins.size // 2, bins.size - 1):
        logits = torch.full((1, bins.size, 2, 3), -1e4)
        logits[:, q] = 1e4
        ab = bins.annealed_mean(logits, temperature=1.0)
        assert torch.allclose(ab[0, :, 1, 1], bins.centres[q], atol=1e-4)


def test_soft_encoding_sums_to_one_and_peaks_at_the_nearest_bin(bins):
    ab = (torch.rand(2, 2, 4, 5) - 0.5) * 60
    targets = bins.soft_encode(ab)
    assert targets.shape == (2, bins.size, 4, 5)
    assert torch.allclose(targets.sum(dim=1), torch.ones(2, 4, 5), atol=1e-5)
    nearest = torch.cdist(ab.permute(0, 2, 3, 1).reshape(-1, 2), bins.centres).argmin(dim=1)
    assert torch.equal(targets.permute(0, 2, 3, 1).reshape(-1, bins.size).argmax(dim=1), nearest)


def test_rebalancing_weights_average_to_one_under_the_smoothed_prior_and_favour_rare_bins(bins):
    weights = bins.rebalance_weights(mix=0.5)
    assert float((bins.smoothed_prior() * weights).sum()) == pytest.approx(1.0, abs=1e-5)
    common, rare = bins.prior.argmax(), bins.prior.argmin()
    assert weights[rare] > weights[common]
    assert torch.allclose(bins.rebalance_weights(mix=1.0), torch.ones(bins.size), atol=1e-5)


def test_annealed_mean_is_the_mean_at_t1_and_the_mode_as_t_goes_to_zero(bins):
    torch.manual_seed(1)
    logits = torch.randn(1, bins.size, 1, 1) * 2
    probabilities = torch.softmax(logits, dim=1)[0, :, 0, 0]
    mean = (probabilities[:, None] * bins.centres).sum(dim=0)
    assert torch.allclose(bins.annealed_mean(logits, 1.0)[0, :, 0, 0], mean, atol=1e-4)
    mode = bins.centres[probabilities.argmax()]
    assert torch.allclose(bins.annealed_mean(logits, 0.01)[0, :, 0, 0], mode, atol=1e-3)


def test_spread_is_zero_for_a_certain_pixel_and_large_for_an_uncertain_one(bins):
    certain = torch.full((1, bins.size, 1, 1), -1e4)
    certain[:, 0] = 1e4
    uncertain = torch.zeros(1, bins.size, 1, 1)
    assert float(bins.spread(certain)) < 1e-2
    assert float(bins.spread(uncertain)) > 10


def test_classification_loss_is_lowest_for_the_true_distribution(bins):
    ab = (torch.rand(1, 2, 3, 3) - 0.5) * 40
    targets = bins.soft_encode(ab)
    weights = bins.rebalance_weights()
    right = classification_loss(torch.log(targets + 1e-8), targets, weights)
    wrong = classification_loss(torch.zeros_like(targets), targets, weights)
    assert right < wrong
