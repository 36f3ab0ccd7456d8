"""Knowing when it does not know: colour fades towards grey as an image looks less like the training set.

Out of distribution, invented colour is worse than none (see the model card), so the colour of an
image unlike anything the network was trained on is shrunk towards neutral. "Unlike" is measured
where the network itself looks: its bottleneck features, averaged over the image, are scored by their
Mahalanobis distance from a Gaussian fitted to the training split's (Lee et al. 2018's simple
out-of-distribution detector). The confidence is 1 up to the distance that most held-out training
survey images reach, and falls linearly to 0 at the distance that all but the nearest 5% of
out-of-distribution calibration images exceed; the colour is multiplied by confidence ** strength (`--caution`, 0 turns it off).
"""

from __future__ import annotations

from contextlib import contextmanager
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

MEAN_KEY, PRECISION_KEY, LIMITS_KEY = "caution.mean", "caution.precision", "caution.limits"
SURVEY_KEYS = ("caution.survey_mean", "caution.survey_precision", "caution.survey_limits")  # (S, C), (S, C, C), (S, 2)
# Measured on the shipped model: on press images any share of its colour was worse than none (see the
# model card), so nearly every calibration image (all but the nearest 5%) gets no colour at all.
FAR_PERCENTILE = 5.0
SHRINKAGE = 0.1  # covariance shrunk towards its diagonal: a few hundred images for a few hundred channels


def bottleneck(network: nn.Module) -> nn.Module:
    """The module whose output is the network's most abstract view of the image."""
    if hasattr(network, "downs"):
        return network.downs[-1]  # U-Net: the deepest encoder level
    if hasattr(network, "encoder"):
        return network.encoder  # the seed encoder-decoder
    raise ValueError(f"no known bottleneck in {type(network).__name__}")


class PooledFeatures:
    """Collects the bottleneck's spatial mean per image while the network runs, weighted by area so
    that the tiles of one large image add up to the image's mean."""

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None
        self.area = 0

    def add(self, output: torch.Tensor) -> None:
        summed = output.detach().float().sum(dim=(2, 3)).cpu()  # (B, C)
        self.sums = summed if self.sums is None else self.sums + summed
        self.area += output.shape[2] * output.shape[3]

    def mean(self) -> torch.Tensor:
        return self.sums / max(self.area, 1)


@contextmanager
def pooled_features(network: nn.Module):
    features = PooledFeatures()
    handle = bottleneck(network).register_forward_hook(lambda module, inputs, output: features.add(output))
    try:
        yield features
    finally:
        handle.remove()


@dataclass
class Caution:
    mean: torch.Tensor  # (C,)
    precision: torch.Tensor  # (C, C)
    limits: torch.Tensor  # (2,): full colour up to limits[0], none from limits[1]

    @classmethod
    def fit(cls, features: torch.Tensor, in_distribution: torch.Tensor, out_of_distribution: torch.Tensor,
            far_percentile: float = FAR_PERCENTILE) -> "Caution":
        """Fit the Gaussian on `features` (N, C) of the training split; full colour up to the 95th
        percentile distance of held-out training-survey images, none from the `far_percentile`
        distance of out-of-distribution calibration images."""
        features = features.double()
        mean = features.mean(0)
        centred = features - mean
        covariance = centred.T @ centred / max(1, len(features) - 1)
        covariance = (1 - SHRINKAGE) * covariance + SHRINKAGE * torch.diag(torch.diagonal(covariance))
        covariance += 1e-6 * torch.eye(len(mean), dtype=torch.float64) * torch.diagonal(covariance).mean()
        unfitted = cls(mean.float(), torch.linalg.inv(covariance).float(), torch.tensor([0.0, 1.0]))
        near = float(np.percentile(unfitted.distance(in_distribution).numpy(), 95))
        far = float(np.percentile(unfitted.distance(out_of_distribution).numpy(), far_percentile))
        if not far > near:
            raise ValueError(f"the calibration images are no farther from the training set ({far:.2f}) than its own held-out images ({near:.2f})")
        return dataclasses.replace(unfitted, limits=torch.tensor([near, far]))

    def distance(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C) pooled features -> (N,) Mahalanobis distance per channel (about 1 for training images)."""
        centred = features.float() - self.mean
        squared = torch.einsum("nc,cd,nd->n", centred, self.precision, centred).clamp(min=0)
        return (squared / len(self.mean)).sqrt()

    def confidence(self, features: torch.Tensor, survey_weights: torch.Tensor | None = None) -> torch.Tensor:
        """(N, C) -> (N,) in [0, 1]: 1 inside the training survey's spread, 0 far outside it (one
        Gaussian for every survey: `survey_weights` are not needed)."""
        near, far = float(self.limits[0]), float(self.limits[1])
        return ((far - self.distance(features)) / (far - near)).clamp(0.0, 1.0)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {key: value.detach().cpu().float().contiguous() for key, value in ((MEAN_KEY, self.mean), (PRECISION_KEY, self.precision), (LIMITS_KEY, self.limits))}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> "Caution | SurveyCaution | None":
        if SURVEY_KEYS[0] in tensors:
            means, precisions, limits = (tensors[key].float() for key in SURVEY_KEYS)
            return SurveyCaution([cls(*parts) for parts in zip(means, precisions, limits)])
        if MEAN_KEY not in tensors:
            return None
        return cls(tensors[MEAN_KEY].float(), tensors[PRECISION_KEY].float(), tensors[LIMITS_KEY].float())


@dataclass
class SurveyCaution:
    """A caution per survey, for a model of several: an image is scored against the Gaussian of the
    survey it looks like, weighted by the recogniser's probabilities. One Gaussian over every
    survey's images is the majority survey's (83 % of the shipped model's are SDSS): it faded 19 %
    of held-out DECaLS galaxies to grey, which their own Gaussian fades 3 % of, while still greying
    76-92 % of press and mission images recognised as DECaLS (model card)."""

    surveys: list[Caution]

    @property
    def limits(self) -> torch.Tensor:
        """(S, 2): each survey's full-colour and no-colour distances."""
        return torch.stack([caution.limits for caution in self.surveys])

    @classmethod
    def fit(cls, features: list[torch.Tensor], in_distribution: list[torch.Tensor], out_of_distribution: torch.Tensor,
            far_percentile: float = FAR_PERCENTILE) -> "SurveyCaution":
        """One Caution.fit per survey: its training features, its held-out features, the same other images."""
        return cls([Caution.fit(own, held_out, out_of_distribution, far_percentile) for own, held_out in zip(features, in_distribution)])

    def confidence(self, features: torch.Tensor, survey_weights: torch.Tensor | None) -> torch.Tensor:
        """(N, C) and (N, S) survey weights -> (N,) each survey's confidence mixed by weight; without
        weights (a survey was not recognised), the most confident survey's."""
        each = torch.stack([caution.confidence(features) for caution in self.surveys], dim=1)  # (N, S)
        if survey_weights is None:
            return each.max(dim=1).values
        return (each * survey_weights.to(each.device, each.dtype)).sum(dim=1)

    def tensors(self) -> dict[str, torch.Tensor]:
        stacked = (torch.stack([getattr(c, name) for c in self.surveys]) for name in ("mean", "precision", "limits"))
        return {key: value.detach().cpu().float().contiguous() for key, value in zip(SURVEY_KEYS, stacked)}
