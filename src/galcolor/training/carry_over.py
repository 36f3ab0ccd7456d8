"""Put a decoder fine-tuned on a frozen encoder (`train --freeze encoder|network --init-from BASE`) into BASE's
model: everything BASE carries that was fitted on its encoder or on galaxies alone (caution, survey
recogniser, galaxy-colour stage, saturations, science calibration) still holds, since the encoder is
bit for bit the same; the network and its config are the fine-tuned run's.

The error head is carried too, but it was fitted to BASE's decoder features: refit it
(`galcolor fit-uncertainty`) before trusting `--uncertainty` from the result.
"""

from __future__ import annotations

import dataclasses

import torch

from ..errors import GalcolorError
from ..models.checkpoint import LoadedModel

ENCODER_PREFIXES = ("stem.", "downs.", "conditioning.recogniser.")


def carry_over(trained: LoadedModel, base: LoadedModel) -> LoadedModel:
    """BASE with TRAINED's network and config; refused unless their encoders and recognisers are identical."""
    if trained.config.surveys != base.config.surveys:
        raise GalcolorError(f"{trained.source}: its surveys {trained.config.surveys} are not {base.source}'s {base.config.surveys}")
    ours, theirs = trained.network.state_dict(), base.network.state_dict()
    encoder = [key for key in theirs if key.startswith(ENCODER_PREFIXES)]
    differing = [key for key in encoder if key not in ours or not torch.equal(ours[key].cpu(), theirs[key].cpu())]
    if not encoder or differing:
        raise GalcolorError(f"{trained.source}: its encoder is not {base.source}'s ({len(differing)} of {len(encoder)} tensors differ); "
                            f"what {base.source} fitted on it would not hold (train with --freeze encoder --init-from it)")
    metadata = {**base.metadata, "colour_network_from": str(trained.source.name if trained.source else "")}
    return dataclasses.replace(base, network=trained.network, config=trained.config, metadata=metadata)
