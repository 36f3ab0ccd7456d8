"""Teacher forcing of a galaxy-colour-conditioned network: each training image's true flux-weighted mean
(a*, b*), told to the decoder with noise and sometimes withheld.

In use the decoder is told an estimate (the galaxy-colour stage's, about 5 ab off on held-out SDSS) or
nothing (a survey whose colour the stage does not set), so training tells it the truth plus noise of a
sigma drawn per image, and nothing for a share of the images: it learns how far to follow what it is told.
"""

from __future__ import annotations

import torch

from ..color.lab import rgb_to_lab
from ..errors import GalcolorError
from ..models.conditioning import galaxy_colour_input
from ..models.galaxy_colour import flux_weighted_mean
from .split import GalaxySet


def true_galaxy_colours(dataset: GalaxySet) -> tuple[torch.Tensor, torch.Tensor]:
    """((N, 2) each whole image's flux-weighted mean (a*, b*) over its signal pixels, (N,) bool: whether
    it has any signal; the mean of an image without is 0 and never told)."""
    colours, signal = torch.zeros(len(dataset), 2), torch.zeros(len(dataset), dtype=torch.bool)
    with torch.inference_mode():
        for index, image in enumerate(dataset.images):
            lab = rgb_to_lab(image[None].float() / 255.0)
            mean, weight = flux_weighted_mean(lab[:, :1], lab[:, 1:])
            colours[index], signal[index] = mean[0], bool(weight[0] > 0)
    return colours, signal


def teacher_colours(dataset: GalaxySet, untold_surveys: tuple[str, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """((N, 2) each training image's true mean colour, (N,) bool: whether it may be told, that is, it has
    signal and its survey is not among `untold_surveys`)."""
    unknown = sorted(set(untold_surveys) - set(dataset.surveys))
    if unknown:
        raise GalcolorError(f"--untold-surveys {' '.join(unknown)}: no training images of that survey "
                            f"(the surveys are {', '.join(dataset.survey_names())})")
    colours, signal = true_galaxy_colours(dataset)
    told = torch.tensor([survey not in untold_surveys for survey in dataset.surveys], dtype=torch.bool)
    return colours, signal & told


def told_colours(colours: torch.Tensor, signal: torch.Tensor, noise: float, dropout: float,
                 generator: torch.Generator) -> torch.Tensor:
    """(B, 2) true means and (B,) whether each may be told -> the (B, 3) galaxy-colour input of one batch:
    the truth plus Gaussian noise of sigma ~ U(0, noise) per image, 'unknown' for a share `dropout`."""
    batch = colours.shape[0]
    sigma = torch.rand(batch, 1, generator=generator) * noise
    noisy = colours + torch.randn(batch, 2, generator=generator) * sigma
    known = (torch.rand(batch, generator=generator) >= dropout) & signal
    return galaxy_colour_input(noisy, known.float())
