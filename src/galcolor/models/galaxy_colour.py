"""The galaxy-colour stage: a small network that reads the whole frame as a thumbnail and predicts the
galaxy's overall colour, its flux-weighted mean (a*, b*) over signal pixels, once per survey.

Most of the U-Net's remaining error is each galaxy's overall colour (an oracle that borrows it from
the truth takes SDSS `de00_fg` from about 7.4 to 5.8), and a 64 x 64 thumbnail of the frame says it
better than the full-resolution network does (model card), for a fraction of the cost. The colour
layout network's prediction is then shifted so that its own flux-weighted mean is this estimate
(inference.galaxy_colour), or a user's hint of it.

The flux-weighted mean over signal pixels is the quantity `colour_r` scores (evaluation.metrics.
integrated_b): pixels with L > SIGNAL_L, each weighted by its L.
"""

from __future__ import annotations

import torch
from torch import nn

PREFIX = "galaxy_colour."
SHAPE_KEY = PREFIX + "shape"  # (surveys, width of the first block, reads the canonical L: 0 or 1), so a checkpoint rebuilds it
THUMBNAIL = 64
SIGNAL_L = 15.0  # as evaluation.metrics.SIGNAL_L; models may not import evaluation


def thumbnail(normalised_lightness: torch.Tensor, size: int = THUMBNAIL) -> torch.Tensor:
    """(B, 1, H, W) L / 100 -> (B, 1, size, size): the frame padded to a square with black sky, centred,
    then area-averaged (adaptive average pooling), so a galaxy keeps its shape whatever the frame's aspect.

    Written as two averaging matrices rather than F.pad and F.adaptive_avg_pool2d: the ONNX exporter
    fixes an adaptive pool's windows at the example's size, and these follow any height and width."""
    height, width = normalised_lightness.shape[-2:]
    side = torch.sym_max(height, width)
    rows = _averaging(height, side, (side - height) // 2, size, normalised_lightness.device)  # (size, H)
    columns = _averaging(width, side, (side - width) // 2, size, normalised_lightness.device)  # (size, W)
    return torch.einsum("ih,bchw,jw->bcij", rows, normalised_lightness.float(), columns)


def _averaging(length, side, offset, size: int, device) -> torch.Tensor:
    """(size, length) weights that average a line of `length` pixels, placed at `offset` in a line of
    `side` zeros, over adaptive pooling's windows [floor(i side / size), ceil((i + 1) side / size))."""
    index = torch.arange(size, device=device)
    start = torch.div(index * side, size, rounding_mode="floor")
    end = torch.div((index + 1) * side + size - 1, size, rounding_mode="floor")
    position = torch.arange(length, device=device) + offset
    inside = (position[None, :] >= start[:, None]) & (position[None, :] < end[:, None])
    return inside.float() / (end - start)[:, None].float()


def flux_weighted_sums(lightness: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 1, H, W) L in [0, 100] and (B, 2, H, W) ab -> ((B, 2) ab summed over pixels with L > SIGNAL_L,
    each weighted by its L, (B,) the weights' sum): sums, so that a streamed image adds up its bands'."""
    weight = torch.where(lightness > SIGNAL_L, lightness, torch.zeros_like(lightness)).float()  # (B, 1, H, W)
    return (ab.float() * weight).sum(dim=(2, 3)), weight.sum(dim=(1, 2, 3))


def flux_weighted_mean(lightness: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """((B, 2) the L-weighted mean ab over pixels with L > SIGNAL_L, (B,) the summed weight: 0 where an
    image has no signal, and the mean is then 0)."""
    summed, total = flux_weighted_sums(lightness, ab)
    return summed / total.clamp_min(1e-6)[:, None], total


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
    )


class GalaxyColourNet(nn.Module):
    """Thumbnail (B, 1, 64, 64) of L / 100 -> (B, S, 2) the galaxy's mean (a*, b*) in ab units as
    each of S surveys renders it. Four stride-2 blocks (width, 2x, 4x, 8x), pooled, then an MLP;
    the outputs are standardised per survey on the training targets (buffers `centre`, `spread`).

    canonical: it reads the canonical lightness the colour network sees (stretch-free) rather than
    the image's own L. The image's own L measured better on every survey's held-out galaxies
    (SDSS r(b*) 0.743 against 0.683, docs/model-history.md): how bright a galaxy is rendered says something of its
    colour that rank-matching removes."""

    def __init__(self, surveys: int = 1, width: int = 24, canonical: bool = False) -> None:
        super().__init__()
        if surveys < 1 or width < 4:
            raise ValueError("the galaxy-colour stage needs at least one survey and width >= 4")
        self.shape = (surveys, width, int(canonical))
        self.canonical = canonical
        widths = [1, width, 2 * width, 4 * width, 8 * width]
        self.features = nn.Sequential(*(_block(widths[i], widths[i + 1]) for i in range(4)))
        self.head = nn.Sequential(nn.Linear(widths[-1], 64), nn.ReLU(inplace=True), nn.Linear(64, 2 * surveys))
        self.register_buffer("centre", torch.zeros(surveys, 2))
        self.register_buffer("spread", torch.ones(surveys, 2))
        # 1 for a survey whose galaxy colour the stage sets, 0 where the colour network's own was nearer the
        # truth on its held-out galaxies (fit-galaxy-colour measures it): there the network's colour stands.
        self.register_buffer("trust", torch.ones(surveys))

    def standardised(self, thumbnails: torch.Tensor) -> torch.Tensor:
        """(B, 1, 64, 64) -> (B, S, 2) standardised estimates (what the training loss sees)."""
        pooled = self.features(thumbnails).float().mean(dim=(2, 3))  # (B, 8 * width)
        return self.head(pooled).view(-1, self.shape[0], 2)

    def forward(self, thumbnails: torch.Tensor) -> torch.Tensor:
        """(B, 1, 64, 64) -> (B, S, 2) in ab units, averaged over the thumbnail's 8 flips and quarter
        turns: a galaxy's colour has no orientation, and the average raised SDSS r(b*) on held-out
        galaxies from 0.743 to 0.765 (docs/model-history.md), at the cost of 8 passes over a thumbnail."""
        views = [torch.rot90(thumbnails, turns, (2, 3)) for turns in range(4)]
        views += [view.flip(3) for view in views]
        batch = thumbnails.shape[0]
        standardised = self.standardised(torch.cat(views)).view(8, batch, *self.centre.shape).mean(0)
        return standardised * self.spread + self.centre  # (B, S, 2)

    def estimate(self, normalised_lightness: torch.Tensor, survey_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, H, W) L / 100 as the stage reads it (canonical or the image's own, padded alike), and
        (B, S) survey weights (None for a stage of one survey) -> (B, 2) the galaxy's mean (a*, b*)
        and (B,) how far to trust it (0: keep the network's own), the surveys' mixed by weight."""
        per_survey = self(thumbnail(normalised_lightness))  # (B, S, 2)
        if survey_weights is None:
            if self.shape[0] != 1:
                raise ValueError(f"a galaxy-colour stage of {self.shape[0]} surveys needs survey weights")
            return per_survey[:, 0], self.trust.expand(per_survey.shape[0])
        weights = survey_weights.float()
        trusted = weights * self.trust  # (B, S)
        total = trusted.sum(dim=1)  # (B,)
        # The trusted surveys' estimates, mixed by weight; the trust is the share of weight they hold.
        mixed = (trusted[:, :, None] * per_survey).sum(dim=1) / total.clamp_min(1e-6)[:, None]
        return mixed, total

    def tensors(self) -> dict[str, torch.Tensor]:
        weights = {PREFIX + k: v.detach().cpu().float().contiguous() for k, v in self.state_dict().items()
                   if not k.endswith("num_batches_tracked")}
        return {**weights, SHAPE_KEY: torch.tensor(self.shape, dtype=torch.int64)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> "GalaxyColourNet | None":
        if SHAPE_KEY not in tensors:
            return None
        surveys, width, canonical = (int(x) for x in tensors[SHAPE_KEY].tolist())
        stage = cls(surveys, width, bool(canonical))
        stored = {k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX) and k != SHAPE_KEY}
        result = stage.load_state_dict(stored, strict=False)  # num_batches_tracked is not stored: only training counts it
        missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
        if missing or result.unexpected_keys:
            raise ValueError(f"galaxy-colour weights do not fit its shape (missing {missing[:2]}, unexpected {result.unexpected_keys[:2]})")
        return stage.eval()
