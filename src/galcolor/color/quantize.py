"""ab as classification (Zhang, Isola & Efros 2016): bins, soft targets, class rebalancing, and
annealed-mean decoding.

The ab plane is cut into square bins of side GRID; only bins the training data actually uses are
kept (Q of them). Targets are soft: each pixel's true ab spreads over its nearest bins with
Gaussian weights. Rare colours (the blue of a star-forming knot) get larger loss weights from the
smoothed empirical prior, so the network is not pulled towards the common beige.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

GRID = 10.0
AB_RANGE = 110.0
NEIGHBOURS = 5
SIGMA = 5.0


def candidate_centres(grid: float = GRID, ab_range: float = AB_RANGE) -> torch.Tensor:
    """(K, 2) centres of every bin on the grid covering [-ab_range, ab_range]^2."""
    axis = torch.arange(-ab_range, ab_range + 1e-6, grid)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([a.flatten(), b.flatten()], dim=1)


def nearest_bin(ab: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N, 2) ab -> (N,) index of the nearest centre."""
    return torch.cdist(ab.float(), centres.float()).argmin(dim=1)


@dataclass
class AbBins:
    centres: torch.Tensor  # (Q, 2) ab of each kept bin
    prior: torch.Tensor  # (Q,) empirical probability of each bin in the training split

    @classmethod
    def from_counts(cls, counts: torch.Tensor, grid: float = GRID, ab_range: float = AB_RANGE) -> "AbBins":
        """Keep the candidate bins with any training pixels; counts is over candidate_centres()."""
        keep = counts > 0
        kept = counts[keep].double()
        return cls(candidate_centres(grid, ab_range)[keep], (kept / kept.sum()).float())

    @property
    def size(self) -> int:
        return self.centres.shape[0]

    def soft_encode(self, ab: torch.Tensor, neighbours: int = NEIGHBOURS, sigma: float = SIGMA) -> torch.Tensor:
        """(B, 2, H, W) ab -> (B, Q, H, W) soft targets that sum to one at every pixel."""
        batch, _, height, width = ab.shape
        flat = ab.permute(0, 2, 3, 1).reshape(-1, 2).float()
        distances = torch.cdist(flat, self.centres.to(ab.device).float())  # (N, Q)
        k = min(neighbours, self.size)
        nearest, index = distances.topk(k, dim=1, largest=False)
        weights = torch.exp(-(nearest**2) / (2 * sigma**2))
        weights = weights / weights.sum(dim=1, keepdim=True)
        targets = torch.zeros(flat.shape[0], self.size, device=ab.device).scatter_(1, index, weights)
        return targets.reshape(batch, height, width, self.size).permute(0, 3, 1, 2)

    def smoothed_prior(self, sigma: float = SIGMA) -> torch.Tensor:
        """(Q,) the prior blurred with a Gaussian over ab: neighbouring colours share evidence."""
        distances = torch.cdist(self.centres.float(), self.centres.float())
        smoothed = torch.exp(-(distances**2) / (2 * sigma**2)) @ self.prior
        return smoothed / smoothed.sum()

    def rebalance_weights(self, mix: float = 0.5, sigma: float = SIGMA) -> torch.Tensor:
        """(Q,) w ∝ ((1−λ)·p̃ + λ/Q)⁻¹ with p̃ the smoothed prior, scaled so E_p̃[w] = 1."""
        smoothed = self.smoothed_prior(sigma)
        weights = 1.0 / ((1.0 - mix) * smoothed + mix / self.size)
        return weights / (smoothed * weights).sum()

    def annealed_mean(self, logits: torch.Tensor, temperature: float) -> torch.Tensor:
        """(B, Q, H, W) logits -> (B, 2, H, W) ab: the mean of the distribution sharpened by 1/T.

        T = 1 gives the mean (safe but dull); T -> 0 the mode (vivid but patchy)."""
        probabilities = self.annealed(logits, temperature)
        return torch.einsum("bqhw,qc->bchw", probabilities, self.centres.to(logits.device).float())

    @staticmethod
    def annealed(logits: torch.Tensor, temperature: float) -> torch.Tensor:
        return torch.softmax(torch.log_softmax(logits.float(), dim=1) / max(temperature, 1e-4), dim=1)

    def spread(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, Q, H, W) logits -> (B, 1, H, W) standard deviation of ab under the predicted
        distribution, in ab units: how unsure the colour is."""
        probabilities = torch.softmax(logits.float(), dim=1)
        centres = self.centres.to(logits.device).float()
        mean = torch.einsum("bqhw,qc->bchw", probabilities, centres)
        second = torch.einsum("bqhw,q->bhw", probabilities, (centres**2).sum(dim=1))[:, None]
        return (second - (mean**2).sum(dim=1, keepdim=True)).clamp(min=0).sqrt()


def count_bins(ab_pixels: torch.Tensor, grid: float = GRID, ab_range: float = AB_RANGE) -> torch.Tensor:
    """(N, 2) ab samples -> counts over candidate_centres()."""
    centres = candidate_centres(grid, ab_range)
    index = nearest_bin(ab_pixels.clamp(-ab_range, ab_range), centres)
    return torch.bincount(index, minlength=centres.shape[0])


def classification_loss(
    logits: torch.Tensor, targets: torch.Tensor, class_weights: torch.Tensor, pixel_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy with soft targets, each pixel weighted by the rebalancing weight of its most
    likely true bin (Zhang et al. 2016, eq. 2 and 3), and optionally by (B, H, W) pixel_weights."""
    log_probabilities = torch.log_softmax(logits.float(), dim=1)
    weights = class_weights.to(logits.device)[targets.argmax(dim=1)]  # (B, H, W)
    if pixel_weights is not None:
        weights = weights * pixel_weights
    return -(weights * (targets * log_probabilities).sum(dim=1)).sum() / weights.sum().clamp(min=1e-12)
