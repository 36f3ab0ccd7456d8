"""A U-Net colourizer with configurable width and depth (the default shipped architecture), optionally
predicting chroma at a reduced working resolution and conditioned on the survey."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..color.lab import luminance_of_lightness
from .conditioning import Conditioning, GalaxyColourFiLM
from .guided import GuidedHead


class DoubleConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Bilinear 2x upsampling, then a double conv over the upsampled map joined with the skip."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = DoubleConv(in_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], dim=1))


class UNetColorizer(nn.Module):
    """Widths double at each of `depth` downsamplings: base_width * 2**level.

    working_scale s > 1: the U-Net runs on L average-pooled by s; its last features are upsampled
    and a small full-resolution head (guided.GuidedHead) predicts ab from them, guided by the full
    L. surveys > 0 or global_pathway: the decoder levels are FiLM-conditioned on a survey embedding
    and/or the pooled bottleneck (conditioning.Conditioning). galaxy_colour: they are also FiLM-conditioned
    on the galaxy's mean colour (conditioning.GalaxyColourFiLM), given to `decode`. With s = 1 and none
    of these, this is the plain U-Net of the first shipped weights, parameter for parameter.
    """

    def __init__(self, base_width: int = 32, depth: int = 4, out_channels: int = 2, bounded: bool = True,
                 working_scale: int = 1, surveys: int = 0, global_pathway: bool = False, global_pooling: str = "mean",
                 galaxy_colour: bool = False) -> None:
        super().__init__()
        if depth < 1 or base_width < 4:
            raise ValueError("U-Net needs depth >= 1 and base_width >= 4")
        if working_scale not in (1, 2, 4):
            raise ValueError("working_scale must be 1, 2 or 4")
        widths = [base_width * 2**level for level in range(depth + 1)]
        if global_pooling not in ("mean", "flux"):
            raise ValueError("global_pooling must be 'mean' or 'flux'")
        self.depth, self.working_scale, self.surveys, self.global_pooling = depth, working_scale, surveys, global_pooling
        self.stem = DoubleConv(1, widths[0])
        self.downs = nn.ModuleList(DoubleConv(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(
            Up(widths[i + 1], widths[i], widths[i]) for i in reversed(range(depth))
        )
        if working_scale == 1:
            self.head = nn.Sequential(nn.Conv2d(widths[0] + 1, out_channels, 1), nn.Tanh() if bounded else nn.Identity())
        else:  # the same input at full resolution (upsampled features, full L), refined along L's edges
            self.head = GuidedHead(widths[0] + 1, out_channels, bounded)
        if surveys or global_pathway:
            self.conditioning = Conditioning(widths[-1], [widths[i] for i in reversed(range(depth))], surveys, global_pathway)
        if galaxy_colour:
            self.galaxy_colour_film = GalaxyColourFiLM([widths[i] for i in reversed(range(depth))])

    @property
    def size_multiple(self) -> int:
        return 2**self.depth * self.working_scale

    def _encode(self, lightness: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's outputs at the working resolution, the bottleneck last."""
        small = F.avg_pool2d(lightness, self.working_scale) if self.working_scale > 1 else lightness  # (B, 1, H/s, W/s)
        skips = [self.stem(small)]  # (B, w0, h, w)
        for down in self.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))  # (B, w_i, h/2^i, w/2^i)
        return skips

    def condition_of(self, lightness: torch.Tensor, survey: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The (B, D) conditioning vector of whole images (and the recogniser's (B, S) logits), to pass
        as `condition=` to the tiles of each, so that every tile shares one survey guess and one global view."""
        if not hasattr(self, "conditioning"):
            raise ValueError("this network is not conditioned (no surveys, no global pathway)")
        return self.conditioning(self._encode(lightness)[-1], survey, self._pooling_weights(lightness))

    def _pooling_weights(self, lightness: torch.Tensor) -> torch.Tensor | None:
        """(B, 1, h, w) weights of the bottleneck positions for 'flux' pooling: the luminance Y of
        the normalised L (CIE: Y = ((100 L + 16) / 116)^3 above L = 8), averaged over each position's
        pixels. None for 'mean' pooling."""
        if self.global_pooling == "mean":
            return None
        luminance = luminance_of_lightness(lightness.float().clamp(0.0, 1.0) * 100.0)
        return F.avg_pool2d(luminance, self.size_multiple) ** 2 + 1e-6  # squared: the sky of a large frame must not outweigh the galaxy; the floor: a black frame pools as 'mean'

    @property
    def colour_conditioned(self) -> bool:
        return hasattr(self, "galaxy_colour_film")

    def encode(self, lightness: torch.Tensor, survey: torch.Tensor | None = None,
               condition: torch.Tensor | None = None) -> tuple[list[torch.Tensor], torch.Tensor | None, torch.Tensor | None]:
        """The encoder's outputs (bottleneck last), the (B, D) conditioning vector (`condition` where
        given) and the recogniser's (B, S) logits (None where there are none or `condition` was given):
        what `decode` needs, and what decides the galaxy colour a colour-conditioned decoder is told."""
        skips = self._encode(lightness)
        logits = None
        if not hasattr(self, "conditioning"):
            if survey is not None or condition is not None:
                raise ValueError("this network was built without surveys or global pathway; pass survey=None, condition=None")
        elif condition is None:
            condition, logits = self.conditioning(skips[-1], survey, self._pooling_weights(lightness))  # (B, D), (B, S) or None
        return skips, condition, logits

    def decode(self, lightness: torch.Tensor, skips: list[torch.Tensor], condition: torch.Tensor | None,
               galaxy_colour: torch.Tensor | None = None) -> torch.Tensor:
        """ab (B, 2, H, W) in [-1, 1] (or (B, Q, H, W) logits) from `encode`'s outputs (the list is
        used up). galaxy_colour: (B, 3) conditioning.galaxy_colour_input; None: unknown."""
        if galaxy_colour is not None and not self.colour_conditioned:
            raise ValueError("this network was built without galaxy-colour conditioning; pass galaxy_colour=None")
        x = skips.pop()  # (B, w_depth, h/2^depth, w/2^depth): the bottleneck
        colour = self.galaxy_colour_film.modulation(galaxy_colour, x.device) if self.colour_conditioned else None
        for level, up in enumerate(self.ups):
            x = up(x, skips.pop())  # (B, w_i, h/2^i, w/2^i)
            if condition is not None:
                x = self.conditioning.films[level](x, condition)
            if colour is not None:
                x = self.galaxy_colour_film.modulate(level, x, colour)
        if self.working_scale > 1:
            x = F.interpolate(x, size=lightness.shape[-2:], mode="bilinear", align_corners=False)  # (B, w0, H, W)
        return self.head(torch.cat([x, lightness], dim=1))  # (B, 2, H, W) in [-1, 1], or (B, Q, H, W) logits

    def forward(self, lightness: torch.Tensor, survey: torch.Tensor | None = None, with_survey_logits: bool = False,
                condition: torch.Tensor | None = None, galaxy_colour: torch.Tensor | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """lightness: (B, 1, H, W) normalised L, H and W multiples of size_multiple.
        survey: (B, S) survey weights (one-hot for a named survey); None: the recogniser's guess.
        condition: a (B, D) vector from condition_of (then `survey` is not used, and logits are None).
        galaxy_colour: (B, 3) the galaxy's mean colour for a colour-conditioned network (None: unknown).
        Returns ab (B, 2, H, W) in [-1, 1] (or (B, Q, H, W) logits), and with with_survey_logits
        also the recogniser's (B, S) logits (None for a network without surveys)."""
        skips, condition, logits = self.encode(lightness, survey, condition)
        out = self.decode(lightness, skips, condition, galaxy_colour)
        return (out, logits) if with_survey_logits else out
