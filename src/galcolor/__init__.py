"""galcolor: colour grayscale galaxy images with deep convolutional networks.

>>> import galcolor
>>> rgb = galcolor.colorize(grey_array)          # uint8 (H, W, 3), same height and width
>>> model = galcolor.load_model("run/best.safetensors")

The package is grouped by the stages a galaxy passes through; imports flow one way, from the
top of this list down (tests/test_layout.py checks it):

- ``app``: the command line, the web app, the public API and benchmarks;
- ``training``: data folders and splits, augmentation, the trainer, calibration and error fitting;
- ``evaluation``: metrics, science measures, baselines, reports and figures;
- ``inference``: colouring tensors and arrays, tiling, samples and uncertainty, folder runs, ONNX export;
- ``models``: the networks and their heads, configs, checkpoints, and where they run;
- ``color`` and ``io``: colour maths (sRGB <-> Lab, lightness, ab bins, styles); files in and out;
- ``errors`` and ``version``: what every layer may use.
"""

from .app.api import colorize, load_model
from .version import __version__

__all__ = ["colorize", "load_model", "__version__"]
