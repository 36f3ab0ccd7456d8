"""How right a model's colour is when the same galaxies arrive with another stretch.

The SDSS validation galaxies are shown to each model under five renderings of their lightness
(as given, gamma 0.5, gamma 2, asinh, gain 1.5 with clipping: the renderings of
stretch_spread.py); the predicted ab is scored against the true colour with the metrics of
`galcolor evaluate` (de00_fg with the true L). `gray` does not depend on the rendering. Models
run as shipped, caution included, since that is what a user gets.

    python scripts/restretched_accuracy.py ../shared/data/sdss-gz2 shipped=src/galcolor/weights/galcolor-unet.safetensors other=runs/x/best.safetensors
"""

import sys
from pathlib import Path

import torch

from galcolor.app.api import load_model
from galcolor.evaluation.baselines import gray_ab
from galcolor.training.data import load_split
from galcolor.evaluation.evaluate import Method, score_images
from galcolor.inference.predict import predict_ab

sys.path.insert(0, str(Path(__file__).parent))
from stretch_spread import renderings  # noqa: E402

RENDERING_NAMES = ("as given", "gamma 0.5", "gamma 2", "asinh", "gain 1.5")


def main(data_dir: str, *named_models: str) -> None:
    torch.set_num_threads(1)
    models = {name: load_model(path) for name, path in (item.split("=", 1) for item in named_models)}
    val = load_split(Path(data_dir), "val", progress=False)
    images = [image.permute(1, 2, 0).numpy() for image in val.images]
    methods = [Method("gray", gray_ab)] + [
        Method(f"{name} | {RENDERING_NAMES[index]}",
               lambda lightness, model=model, index=index: predict_ab(model, renderings(lightness)[index]))
        for name, model in models.items() for index in range(len(RENDERING_NAMES))
    ]
    scored = score_images(images, val.labels, [str(r) for r in val.relatives], methods, progress=False)
    print(f"gray: de00_fg {scored.summaries['gray']['de00_fg']:.2f} ({len(images)} galaxies)")
    for method in methods[1:]:
        print(f"{method.name}: de00_fg {scored.summaries[method.name]['de00_fg']:.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
