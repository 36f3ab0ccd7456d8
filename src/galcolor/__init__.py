"""galcolor: colour grayscale galaxy images with deep convolutional networks.

>>> import galcolor
>>> rgb = galcolor.colorize(grey_array)          # uint8 (H, W, 3), same height and width
>>> model = galcolor.load_model("run/best.safetensors")
"""

__version__ = "0.1.0"

from .api import colorize, load_model  # noqa: E402

__all__ = ["colorize", "load_model", "__version__"]
