"""The science a coloured image yields, for the user: one row of readings per input (`--science
report.csv`) and, beside each PNG, its star-forming regions (`--science-maps`: `<stem>.starforming.png`,
and `<stem>.starforming.fits` with the input's WCS for FITS input)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from ..io.atomic import write_png
from ..io.fits_output import write_fits_labels
from ..models.checkpoint import LoadedModel
from .outputs import beside
from .predict import Verdict
from .science import ScienceCalibration, ScienceReading, read_science

MAP_SUFFIX = ".starforming.png"
FITS_MAP_SUFFIX = ".starforming.fits"
READING_FIELDS = tuple(ScienceReading.__dataclass_fields__)
COLUMNS = ("source", "output", "status", "survey", "survey_probability", *READING_FIELDS, "message")


def science_of(model: LoadedModel, lab: np.ndarray, verdict: Verdict | None) -> tuple[ScienceReading, np.ndarray]:
    """The reading of one delivered (H, W, 3) Lab image, read as the model's own colour: a user's hint
    is delivered whole, otherwise the colour was scaled by the saturation and the caution's share kept."""
    calibration = ScienceCalibration.from_metadata(model.metadata)
    if verdict is None:
        return read_science(lab, calibration, None, 1.0, model.saturation)
    hinted = verdict.galaxy_colour_from == "hint"
    kept = 1.0 if hinted else verdict.colour_kept
    return read_science(lab, calibration, verdict.survey, kept, 1.0 if hinted else verdict.saturation * verdict.colour_kept)


def science_sentence(reading: ScienceReading) -> str:
    """The reading in a sentence, for the web app's status."""
    if reading.integrated_b is None:
        return "What the colour says: nothing, the image has no galaxy light above L 15."
    parts = [f"integrated a* {reading.integrated_a:+.1f}, b* {reading.integrated_b:+.1f}"]
    if reading.red_probability is not None:
        parts.append(f"a {reading.colour_class} galaxy (P(red) {reading.red_probability:.2f})")
    if reading.colour_gradient_b is not None:
        parts.append(f"bulge minus disk b* {reading.colour_gradient_b:+.1f}")
    share = f" ({reading.starforming_area_fraction:.1%} of the galaxy)" if reading.starforming_regions else ""
    parts.append(f"{reading.starforming_regions} candidate star-forming region{'' if reading.starforming_regions == 1 else 's'}{share}")
    return "What the colour says: " + "; ".join(parts) + "."


def write_maps(png_path: Path, labels: np.ndarray, fits_header=None) -> tuple[str, ...]:
    """The star-forming regions beside the coloured PNG: white on black, and as FITS labels where the
    input was FITS (its header given), with its world coordinates; returns the notes about that header."""
    write_png(beside(png_path, MAP_SUFFIX), np.where(labels > 0, 255, 0).astype(np.uint8))
    if fits_header is None:
        return ()
    return write_fits_labels(beside(png_path, FITS_MAP_SUFFIX), labels, fits_header, "star-forming region")


def science_table(outcomes: Sequence) -> str:
    """CSV text, one row per input (failed and skipped ones too, with their message)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for outcome in outcomes:
        colour = outcome.colour or {}
        row = {"source": outcome.source, "output": outcome.output or "", "status": outcome.status, "message": outcome.message,
               "survey": colour.get("survey") or "", "survey_probability": _cell(colour.get("survey_probability"))}
        science = dict(outcome.science or {})
        if "unread" in science:  # coloured, but too large to read (the row says why)
            row["message"] = "; ".join(part for part in (outcome.message, science.pop("unread")) if part)
        row.update({key: _cell(value) for key, value in science.items()})
        writer.writerow(row)
    return buffer.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
