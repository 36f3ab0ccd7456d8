"""Colour maths: sRGB <-> CIELAB (lab), the canonical lightness the network sees (lightness), ab bins
for classification (quantize), and colour-style presets (style).

May import: galcolor.errors only; styles name the model they act on by its shape, not its class.
"""
