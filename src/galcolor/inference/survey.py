"""Which survey an image looks like, to a survey-conditioned model: what `--survey auto` colours as."""

from __future__ import annotations

import torch

from ..models.checkpoint import LoadedModel
from ..models.device import autocast
from .predict import network_input, central_part, network_lightness


def recognise_survey(model: LoadedModel, lightness: torch.Tensor) -> dict[str, float] | None:
    """(1, 1, H, W) L in [0, 100] -> each of the model's surveys and the probability its recogniser
    gives it; None for a model without surveys. A frame larger than TILE is judged by its central
    TILE x TILE part, as the network sees a tile."""
    surveys = model.config.surveys
    if not surveys:
        return None
    x = network_input(model, central_part(network_lightness(model, lightness)))
    with torch.inference_mode(), autocast(x.device):
        _, logits = model.network(x, with_survey_logits=True)
    probabilities = torch.softmax(logits.float(), dim=1)[0].cpu().tolist()
    return dict(zip(surveys, probabilities))
