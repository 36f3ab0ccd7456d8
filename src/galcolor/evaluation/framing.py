"""How a model's colour depends on the framing of its galaxies: the same held-out galaxies as the
training crops show them, as whole survey frames, enlarged, reduced, off-centre, and four to a field.

The shipped model was trained on 256 x 256 crops in which each galaxy fills a typical share of the
frame; a user's frame rarely does. Each framing re-frames every held-out image, colours the frame as
a user's image is coloured (predict_ab, with its verdicts: the survey recognised and the share of
colour caution kept), and scores each galaxy's part of the frame against the same part of the truth
with score_images, beside the pixel-wise `gray` and `lut` baselines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from ..color.lab import rgb_to_lab
from ..inference.predict import Verdict, predict_ab
from ..models.checkpoint import LoadedModel
from .evaluate import Method, methods_for, score_images

FRAMINGS = ("crop", "frame424", "enlarged", "reduced", "offcentre", "fields")
FADED = 0.005  # colour kept below this: "faded to grey by caution", as the colorize progress line says
FIELD_SIDE = 2  # a field is FIELD_SIDE x FIELD_SIDE galaxies side by side

Region = tuple[slice, slice]


@dataclass
class Framed:
    """One frame a model colours, and the parts of it scored, each as one galaxy."""

    frame: np.ndarray  # (H, W, 3) uint8: the colour truth, of which the model sees only L
    regions: list[Region]  # each galaxy's part of the frame
    members: list[int]  # the index of each region's galaxy in the held-out list


def resized(rgb8: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 resampled bicubically (PIL; antialiased when reducing)."""
    return np.asarray(Image.fromarray(rgb8).resize((width, height), Image.Resampling.BICUBIC))


def enlarged(rgb8: np.ndarray) -> np.ndarray:
    """The central half of the frame at twice the scale, at the frame's size: the galaxy 2x larger in its frame."""
    height, width = rgb8.shape[:2]
    top, left = height // 4, width // 4
    return resized(rgb8[top : top + height // 2, left : left + width // 2], height, width)


def reduced(rgb8: np.ndarray) -> np.ndarray:
    """The whole frame at half the scale: the galaxy half as large in a frame half as wide."""
    height, width = rgb8.shape[:2]
    return resized(rgb8, height // 2, width // 2)


def offcentre(rgb8: np.ndarray) -> np.ndarray:
    """The top-left three quarters of the frame: the galaxy a sixth of the frame's side off its centre, on both axes."""
    height, width = rgb8.shape[:2]
    return rgb8[: 3 * height // 4, : 3 * width // 4]


def whole(rgb8: np.ndarray) -> Region:
    return slice(0, rgb8.shape[0]), slice(0, rgb8.shape[1])


def fields(images: Sequence[np.ndarray]) -> list[Framed]:
    """Held-out galaxies FIELD_SIDE x FIELD_SIDE side by side in one frame (leftovers that fill no field are left out);
    each galaxy is scored on its own part of the field."""
    per_field = FIELD_SIDE * FIELD_SIDE
    framed = []
    for start in range(0, len(images) - per_field + 1, per_field):
        members = list(range(start, start + per_field))
        height = min(images[i].shape[0] for i in members)
        width = min(images[i].shape[1] for i in members)
        tiles = [images[i][:height, :width] for i in members]
        rows = [np.concatenate(tiles[r * FIELD_SIDE : (r + 1) * FIELD_SIDE], axis=1) for r in range(FIELD_SIDE)]
        regions = [(slice(r * height, (r + 1) * height), slice(c * width, (c + 1) * width))
                   for r in range(FIELD_SIDE) for c in range(FIELD_SIDE)]
        framed.append(Framed(np.ascontiguousarray(np.concatenate(rows, axis=0)), regions, members))
    return framed


def reframe(images: Sequence[np.ndarray], framing: str, frames424: Sequence[np.ndarray] | None = None) -> list[Framed]:
    """The held-out images (the training crops) in one framing. `frame424`: the same galaxies' published
    424 x 424 frames (`frames424`, in the same order), scored on the whole frame, as a user's frame is coloured."""
    if framing == "fields":
        return fields(images)
    if framing == "frame424":
        if frames424 is None:
            raise ValueError("the frame424 framing needs each galaxy's 424 x 424 frame")
        sources = frames424
    else:
        change: Callable[[np.ndarray], np.ndarray] = {"crop": lambda x: x, "enlarged": enlarged, "reduced": reduced,
                                                      "offcentre": offcentre}[framing]
        sources = [np.ascontiguousarray(change(image)) for image in images]
    return [Framed(frame, [whole(frame)], [index]) for index, frame in enumerate(sources)]


@dataclass
class FramingScore:
    """One framing's scores: each method's summary, and the model's verdicts counted per galaxy."""

    framing: str
    galaxies: int
    summaries: dict[str, dict[str, float]]
    recognised: dict[str, int]  # per model: galaxies whose frame was recognised as their own survey
    faded: dict[str, int]  # per model: galaxies whose frame caution faded to grey
    kept: dict[str, float]  # per model: mean share of colour caution kept, over galaxies


Predictor = Callable[[LoadedModel, torch.Tensor, list], torch.Tensor]  # predict_ab's signature: (model, L, verdicts) -> ab


def score_framing(framed: Sequence[Framed], labels: Sequence[int | None], names: Sequence[str],
                  models: Sequence[tuple[str, LoadedModel]], survey: str | None, framing: str = "",
                  predictors: dict[str, Predictor] | None = None) -> FramingScore:
    """Colour each frame with every model (as predict_ab colours a user's frame, or as `predictors` names
    for a model) and score each galaxy's region."""
    truths, galaxy_labels, galaxy_names = [], [], []
    predicted: dict[str, list[torch.Tensor]] = {name: [] for name, _ in models}
    verdicts: dict[str, list[Verdict]] = {name: [] for name, _ in models}
    for item in framed:
        rgb = torch.from_numpy(item.frame.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        with torch.inference_mode():
            lightness = rgb_to_lab(rgb)[:, :1]
        for name, model in models:
            frame_verdicts: list[Verdict] = []
            with torch.inference_mode():
                ab = (predictors or {}).get(name, predict_ab)(model, lightness, frame_verdicts).float().cpu()
            for rows, columns in item.regions:
                predicted[name].append(ab[..., rows, columns])
                verdicts[name].append(frame_verdicts[0])
        for (rows, columns), member in zip(item.regions, item.members):
            truths.append(item.frame[rows, columns])
            galaxy_labels.append(labels[member])
            galaxy_names.append(names[member])
    methods = [m for m in methods_for(models) if m.name in ("gray", "lut")]  # pixel-wise: the same on a region as on its frame
    methods += [Method(name, _replay(predicted[name])) for name, _ in models]
    # The science measures (regions, profiles) are most of score_images' time and no part of a framing's table.
    summaries = score_images(truths, galaxy_labels, galaxy_names, methods, progress=False, science=False).summaries
    return FramingScore(
        framing, len(truths), summaries,
        recognised={name: sum(v.survey == survey for v in verdicts[name]) for name, _ in models},
        faded={name: sum(v.colour_kept < FADED for v in verdicts[name]) for name, _ in models},
        kept={name: float(np.mean([v.colour_kept for v in verdicts[name]])) if verdicts[name] else float("nan") for name, _ in models},
    )


def _replay(predictions: list[torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """score_images asks each method for each galaxy once, in order: hand back the region of its frame's colour."""
    queue = iter(predictions)
    return lambda lightness: next(queue)


def format_framings(scores: Sequence[FramingScore], models: Sequence[str], survey: str | None) -> str:
    """A Markdown table, one row per framing: each method's de00_fg and colour_r, and each model's verdicts."""
    methods = list(scores[0].summaries) if scores else []
    header = ["framing", "galaxies"] + [f"{m} de00_fg ↓" for m in methods] + [f"{m} colour_r ↑" for m in methods]
    for name in models:
        header += [f"{name} as {survey or 'its survey'}", f"{name} faded", f"{name} kept"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for score in scores:
        cells = [score.framing, str(score.galaxies)]
        cells += [f"{score.summaries[m]['de00_fg']:.2f}" for m in methods]
        cells += [f"{score.summaries[m]['colour_r']:.3f}" for m in methods]
        for name in models:
            cells += [f"{score.recognised[name]}", f"{score.faded[name]}", f"{score.kept[name]:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
