"""Judging a frame by its main galaxy, framed as the training crops framed theirs (issue #28, item 3).

The survey recogniser, the caution and the galaxy-colour stage learnt 256 x 256 training crops, in
which one galaxy sits at the centre at a typical size. A user's frame is seldom so: a whole survey
frame, a zoom, a field of several galaxies. Here the frame's main galaxy (sources.FrameSources.
main_galaxy: the bright galaxy nearest the centre) is found, and a VIEW x VIEW view of the frame is
made with it where training crops hold theirs (GALAXY_AT) and resampled so that its half-light radius lies in the training crops' range
(TRAINING_RADII: unchanged inside it, brought to its nearer end outside). The view decides how the
network reads the frame's lightness (the canonical-lightness table is the view's), and what the
whole frame does for the colour: its survey, its whole-galaxy view (the conditioning vector every
tile of a large frame shares), its galaxy colour and its caution; the colour network then lays the
colour out over the whole frame at its own scale, as it colours a large frame's tiles.

Experimental: `predict_ab_judged` is the whole-frame path only (frames up to TILE); the tiled,
row-band and ONNX paths still judge the frame itself (docs/model-card.md, "Framing").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..color.lightness import apply_table, mapping_table
from ..models.checkpoint import LoadedModel
from .predict import Verdict, _finish, judge_frame, network_output, predict_ab, told_colour, watching
from .galaxy_colour import shifted
from .sources import Source, find_sources

VIEW = 256  # the training crops' side
# The main galaxy's half-light radius (px, sources.find_sources) in training crops: from the 10th percentile of
# sdss-gz2's (18.3) to the 90th of decals' (34.2), 80 training crops of each (docs/model-card.md, "Framing").
TRAINING_RADII = (18.0, 34.0)
# Where the training crops hold their galaxy: SDSS's (the most of them) at pixel 133 on both axes, not the centre
# (127.5): the crops were cut at 80, 80 from frames centred at 211.5 (median of 80 sdss-gz2 training crops' main
# galaxies, 132.9, 133.0; decals' sit at the centre, 127.8, 127.6). The galaxy-colour stage is not shift-invariant:
# moved 4 px, one held-out SDSS spiral's estimated b* changes by 8.
GALAXY_AT = 133.0


def view_scale(galaxy: Source, radii: tuple[float, float] = TRAINING_RADII) -> float:
    """How much to enlarge the frame so that the galaxy's half-light radius lies within `radii`: 1 inside."""
    low, high = radii
    return min(max(galaxy.half_light_radius, low), high) / galaxy.half_light_radius


def view_of(image: torch.Tensor, galaxy: Source, scale: float, side: int = VIEW, at: float = GALAXY_AT) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, side, side): the frame enlarged by `scale` (area-averaged when reduced, bilinear
    when enlarged), the galaxy at pixel (at, at) of the view, black sky (0) beyond the frame."""
    height, width = image.shape[-2:]
    size = max(1, round(height * scale)), max(1, round(width * scale))
    resized = image.float() if size == (height, width) else F.interpolate(
        image.float(), size=size, mode="area" if scale < 1 else "bilinear", align_corners=None if scale < 1 else False)
    # The galaxy's centre in the resized frame, placed at pixel (at, at).
    column = (galaxy.x + 0.5) * size[1] / width - 0.5
    row = (galaxy.y + 0.5) * size[0] / height - 0.5
    left, top = round(column - at), round(row - at)
    pad = (max(0, -left), max(0, left + side - size[1]), max(0, -top), max(0, top + side - size[0]))
    padded = F.pad(resized, pad)
    top, left = top + pad[2], left + pad[0]
    return padded[..., top : top + side, left : left + side]


def main_galaxy_of(lightness: torch.Tensor) -> Source | None:
    """The main galaxy of a (1, 1, H, W) L frame, or None where it holds no source."""
    return find_sources(lightness[0, 0].detach().float().cpu().numpy()).main_galaxy()


def seen_as_viewed(model: LoadedModel, lightness: torch.Tensor, galaxy: Source, scale: float) -> torch.Tensor:
    """The (1, 1, H, W) L the network sees for the frame: where it reads canonical lightness, mapped by the table of
    the main galaxy's view (its pixels inside the frame), as a training crop's is by its own. The table of the
    whole frame depends on the framing: the more sky around the galaxy, the higher its pixels rank, and the
    brighter and larger the network sees it."""
    if model.config.input_lightness == "raw":
        return lightness
    inside = view_of(torch.ones_like(lightness[:, :1], dtype=torch.float32), galaxy, scale) > 0.5
    table = mapping_table(view_of(lightness, galaxy, scale)[inside], model.lightness_reference)
    return apply_table(lightness, table)


def predict_ab_judged(model: LoadedModel, lightness: torch.Tensor, verdicts: list[Verdict] | None = None) -> torch.Tensor:
    """predict_ab for one (1, 1, H, W) frame, its survey, whole-galaxy view, galaxy colour and caution judged on a
    view of its main galaxy framed as the training crops (view_of); a frame without sources as predict_ab colours it."""
    galaxy = main_galaxy_of(lightness) if lightness.shape[0] == 1 else None
    if galaxy is None:
        return predict_ab(model, lightness, verdicts)
    scale = view_scale(galaxy)
    seen = seen_as_viewed(model, lightness, galaxy, scale)
    with watching(model) as features:  # caution judges the view: the network's features pooled over it alone
        judged = judge_frame(model, view_of(seen, galaxy, scale), view_of(lightness, galaxy, scale))
        if features is not None and features.sums is None:  # a network without conditioning: run it on the view for caution
            network_output(model, view_of(seen, galaxy, scale), prepared=True)
    output = network_output(model, seen, prepared=True, condition=judged.condition, galaxy_colour=told_colour(model, judged.target))
    ab = model.decode(output)
    return _finish(shifted(ab, lightness.to(ab.device), judged.target, model.point_sources_unshifted), lightness, model,
                   features, judged.weights, judged.target, verdicts)
