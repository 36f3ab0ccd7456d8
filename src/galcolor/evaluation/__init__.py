"""Judging colour: pixel metrics (metrics), what colour means physically (science), the gray and lut
baselines (baselines), reports over a split (evaluate) and their figures (figures), and the same galaxies framed otherwise (framing).

A new metric goes here. May import: inference, models, color, io, errors.
"""
