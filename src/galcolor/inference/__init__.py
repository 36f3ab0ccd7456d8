"""Colouring with a trained model: tensors and tiles (predict), images streamed in row bands (bands),
in-memory images (arrays), samples and uncertainty (diversity, expected_error), folder runs (pipeline) and the files each image gets (outputs),
ONNX export (export), the galaxies in a frame (sources) and judging a frame by its main galaxy (judging).

May import: models, color, io, errors, version.
"""
