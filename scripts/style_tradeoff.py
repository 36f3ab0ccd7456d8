"""What a default saturation costs on SDSS and buys on surveys that render colour more faintly.

Surveys differ in how saturated they render the same galaxy (DECaLS and GAMA composites are far
paler than SDSS's). Lacking those surveys' images, this imitates them: the SDSS validation
galaxies are scored against their true colour as given and against the same colour at a fraction
of its strength (true ab times 0.7 and 0.5, L unchanged: at 0.5 grey scores about 6, as the
issue measured grey on DECaLS and GAMA). The model colours each galaxy once, as shipped (caution
included); its colour is then scored at several saturations, beside grey. The suggested default
is the saturation whose worst ratio to grey over the three strengths is lowest: safe on a survey
of unknown strength; `galcolor calibrate --saturation F` stores it in a model.

    python scripts/style_tradeoff.py ../shared/data/sdss-gz2 [model.safetensors]
"""

import sys
from pathlib import Path

import numpy as np
import torch

from galcolor.app.api import load_model
from galcolor.evaluation.baselines import gray_ab
from galcolor.color.lab import lab_array_to_rgb8, rgb_array_to_lab
from galcolor.training.data import load_split
from galcolor.evaluation.evaluate import Method, score_images
from galcolor.inference.predict import predict_ab

RENDERING_STRENGTHS = (1.0, 0.7, 0.5)
SATURATIONS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4)


def rendered_at(image: np.ndarray, strength: float) -> np.ndarray:
    """(H, W, 3) uint8 sRGB with its ab scaled by `strength`, L kept."""
    lab = rgb_array_to_lab(image / 255.0)
    lab[..., 1:] *= strength
    return lab_array_to_rgb8(lab)


class OncePerImage:
    """The model's colour of the image being scored, computed once whatever the saturation."""

    def __init__(self, model) -> None:
        self.model, self.lightness, self.ab = model, None, None

    def at(self, lightness: torch.Tensor, saturation: float) -> torch.Tensor:
        if self.lightness is None or not torch.equal(self.lightness, lightness):
            self.lightness, self.ab = lightness.clone(), predict_ab(self.model, lightness)
        return self.ab * saturation


def main(data_dir: str, model_path: str | None = None) -> None:
    torch.set_num_threads(1)
    model = load_model(model_path).with_style(saturation=1.0)
    val = load_split(Path(data_dir), "val", progress=False)
    images = [image.permute(1, 2, 0).numpy() for image in val.images]
    once = OncePerImage(model)
    methods = [Method("gray", gray_ab)] + [
        Method(f"saturation {s}", lambda lightness, s=s: once.at(lightness, s)) for s in SATURATIONS
    ]
    table = {}
    for strength in RENDERING_STRENGTHS:
        truth = [rendered_at(image, strength) for image in images]
        scored = score_images(truth, val.labels, [str(r) for r in val.relatives], methods, progress=False)
        table[strength] = {name: summary["de00_fg"] for name, summary in scored.summaries.items()}
    print(f"de00_fg on {len(images)} SDSS validation galaxies; columns: true colour at this strength")
    print("| | " + " | ".join(f"truth x{s}" for s in RENDERING_STRENGTHS) + " |")
    print("|---|" + "---|" * len(RENDERING_STRENGTHS))
    for method in methods:
        print(f"| {method.name} | " + " | ".join(f"{table[s][method.name]:.2f}" for s in RENDERING_STRENGTHS) + " |")
    worst = {s: max(table[strength][f"saturation {s}"] / table[strength]["gray"] for strength in RENDERING_STRENGTHS) for s in SATURATIONS}
    chosen = min(worst, key=worst.get)
    print(f"lowest worst-case ratio to grey: saturation {chosen} ({worst[chosen]:.3f}; at 1.0: {worst[1.0]:.3f})")


if __name__ == "__main__":
    main(*sys.argv[1:])
