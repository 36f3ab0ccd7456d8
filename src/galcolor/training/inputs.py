"""What the network sees of a training crop: another instrument's rendering where augmentation is
on, and the canonical lightness mapping where the model reads it."""

from __future__ import annotations

import dataclasses

import torch

from ..color.lab import rgb_to_lab
from ..color.lightness import apply_table, mapping_table, reference_from
from .augment import InstrumentAugmentation, imitate, optical, photometric
from .split import GalaxySet


class NetworkInputs:
    """Turns Lab crops into (network L, target Lab) for one training set."""

    def __init__(self, train_set: GalaxySet, canonical: bool, augment: bool) -> None:
        self.train_set = train_set
        self._whole_lightness_cache: dict[int, torch.Tensor] = {}
        self.lightness_reference = reference_from(self._whole_lightness(i) for i in range(len(train_set))) if canonical else None
        self.augmentation = InstrumentAugmentation() if augment else None

    def _whole_lightness(self, index: int) -> torch.Tensor:
        """(1, H, W) L of a whole training image: a crop's canonical mapping is built from its whole
        image, as at inference, where the mapping comes from the whole frame."""
        if index not in self._whole_lightness_cache:
            self._whole_lightness_cache[index] = rgb_to_lab(self.train_set.images[index][None].float() / 255.0)[0, :1]
        return self._whole_lightness_cache[index]

    def __call__(self, lab: torch.Tensor, indices: list[int], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, h, w) Lab crops -> (the L the network sees, the target Lab), after imitating another
        instrument where augmentation is on, and the canonical mapping where the model has one.
        The target keeps the truth's L (it decides which pixels are galaxy), moved only by the optics."""
        if self.augmentation is None and self.lightness_reference is None:
            return lab[:, :1], lab
        seen, targets = [], []
        for crop_lab, index in zip(lab.cpu(), indices):
            crop_l, true_l, crop_ab = crop_lab[:1], crop_lab[:1], crop_lab[1:]
            draw = self.augmentation.draw(generator) if self.augmentation else None
            if draw is not None:
                crop_l, true_l, crop_ab = imitate(crop_l, crop_ab, draw, generator)
            if self.lightness_reference is not None:
                whole = self._whole_lightness(index)
                if draw is not None and not draw.is_identity:  # the whole frame as the same instrument shows it
                    whole = photometric(optical(whole[None], dataclasses.replace(draw, scale=1.0))[0], draw, generator)
                crop_l = apply_table(crop_l, mapping_table(whole, self.lightness_reference))
            seen.append(crop_l)
            targets.append(torch.cat([true_l, crop_ab]))
        return torch.stack(seen).to(lab.device), torch.stack(targets).to(lab.device)

