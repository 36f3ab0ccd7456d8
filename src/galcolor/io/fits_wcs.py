"""An input's celestial WCS carried to galcolor's FITS outputs as the input states it: its own cards
(CTYPE, CD or PC, SIP, PV...) for pixel axes 1 and 2, checked with astropy to give the same sky
position at every pixel, and astropy's warnings about the header turned into one note.

By the FITS standard SIP coefficients belong to a WCS only where CTYPE ends in '-SIP'; HST drizzled
images carry them under a plain 'RA---TAN', where astropy applies them anyway (with a 30-line INFO
on stdout). Here they are dropped, so the output gives the input's standard (plain TAN) positions
and keeps its CTYPE, and a note says so."""

from __future__ import annotations

import re
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

_SIP_KEY = re.compile(r"^(A|B|AP|BP)_(ORDER|DMAX|\d+_\d+)$")
# The primary WCS's cards for axes 1 and 2 (WCSAXES is the writer's: the output's axes are its own).
_WCS_KEY = re.compile(
    r"^(WCSNAME|C(TYPE|RVAL|RPIX|DELT|UNIT|ROTA|NAME|RDER|SYER)[12]|CD[12]_[12]|PC[12]_[12]|PC00[12]00[12]"
    r"|P[VS][12]_\d+|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|MJD-OBS|DATE-OBS|MJDREF|DATEREF)$"
)
TOLERANCE_ARCSEC = 0.01  # positions of the output's WCS against the input's, at every pixel checked
# warnings.catch_warnings is process-wide: contexts entered and left by two threads at once can leave
# one's filters and recorder in place for good. Every one galcolor enters takes this lock.
_ASTROPY_LOCK = threading.Lock()


@dataclass(frozen=True)
class CarriedWcs:
    cards: list  # astropy Cards: the input's own celestial WCS keywords (empty: none to carry)
    planar: bool  # a distortion (SIP, PV polynomials) that astropy reads in a two-axis image only, not in a cube
    notes: tuple[str, ...]  # what the user should know about the header, one phrase each


NO_WCS = CarriedWcs([], False, ())


def carried_wcs(source_header) -> CarriedWcs:
    """The celestial WCS of pixel axes 1 and 2 of `source_header`, ready to write; never raises."""
    from astropy.io import fits
    from astropy.wcs import WCS

    if source_header is None:
        return NO_WCS
    header = fits.Header(source_header, copy=True)
    notes = []
    ctypes = [str(header.get(f"CTYPE{axis}", "")) for axis in (1, 2)]
    sip_keys = sorted({key for key in header if _SIP_KEY.match(key)}, key=lambda key: (not key.endswith("_ORDER"), key))
    if sip_keys and not all(ctype.upper().endswith("-SIP") for ctype in ctypes):
        for key in sip_keys:
            header.remove(key, remove_all=True)
        notes.append(f"its {len(sip_keys)} SIP distortion keywords ({', '.join(sip_keys[:2])}, ...) are no part of its WCS, as "
                     f"CTYPE1 = '{ctypes[0]}' has no '-SIP' (a drizzled image's leftovers): ignored, and left out of the FITS output")
    with astropy_quiet() as heard:
        try:
            reference = WCS(header, naxis=2, relax=True)
        except Exception as err:  # astropy raises many types on odd headers
            reference = None
            notes.append(f"its WCS is not readable by astropy ({' '.join(str(err).split())[:100]}): the FITS output has none")
    notes.extend(_fixes(heard))
    if reference is None or not reference.has_celestial:
        return CarriedWcs([], False, tuple(notes))
    cards = [card for card in header.cards if _WCS_KEY.match(card.keyword) or _SIP_KEY.match(card.keyword)]
    carried = CarriedWcs(cards, False, tuple(notes))
    shape = (int(header.get("NAXIS2", 1)), int(header.get("NAXIS1", 1)))
    worst = _worst_offset(carried.cards, reference, shape)
    if worst > TOLERANCE_ARCSEC:  # a form of WCS our card selection misses: astropy's own rendering
        rendered = reference.to_header(relax=True)
        for axis, ctype in enumerate(ctypes, 1):
            rendered[f"CTYPE{axis}"] = ctype  # never change a CTYPE
        carried = CarriedWcs(list(rendered.cards), False, carried.notes + (f"its WCS keywords were rewritten by astropy (copied as they were, positions moved {worst:.2g}\")",))
        worst = _worst_offset(carried.cards, reference, shape)
        if worst > TOLERANCE_ARCSEC:
            return CarriedWcs([], False, tuple(notes) + (f"its WCS could not be carried exactly (off by {worst:.2g}\"): the FITS output has none",))
    planar = reference.sip is not None or _worst_offset(carried.cards, reference, shape, cube=True) > TOLERANCE_ARCSEC
    return CarriedWcs(carried.cards, planar, carried.notes)


def _worst_offset(cards, reference, shape: tuple[int, int], cube: bool = False) -> float:
    """The largest separation (arcsec) between `reference` and the WCS `cards` make, read as a user
    would (`WCS(header)`, its `.celestial` in a cube with a colour axis), on a grid of pixels."""
    from astropy.io import fits
    from astropy.wcs import WCS

    header = fits.Header(cards)
    if cube:
        header["CTYPE3"] = "RGB"
    with astropy_quiet():
        try:
            written = WCS(header).celestial if cube else WCS(header)
        except Exception:  # astropy cannot take a SIP or PV distortion into a cube's celestial axes
            return float("inf")
    y, x = np.meshgrid(*(np.unique(np.linspace(0, n - 1, min(n, 64)).round()) for n in shape), indexing="ij")
    with np.errstate(invalid="ignore"):
        return _separation_arcsec(reference.all_pix2world(x, y, 0), written.all_pix2world(x, y, 0))


def _separation_arcsec(one, other) -> float:
    def unit(lon, lat):
        lon, lat = np.radians(lon), np.radians(lat)
        return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])

    a, b = unit(*one), unit(*other)
    both_off = np.isnan(a).any(axis=0) & np.isnan(b).any(axis=0)  # off the projection in both: the same
    chord = np.linalg.norm(a - b, axis=0)
    chord = np.where(both_off, 0.0, chord)
    if np.isnan(chord).any():
        return float("inf")
    return float(np.degrees(2 * np.arcsin(np.clip(chord.max(initial=0.0) / 2, 0, 1))) * 3600)


@contextmanager
def astropy_quiet():
    """Astropy's warnings and log records (its INFO lines go to stdout) about a header, kept from the
    user and listed (as text) for a note instead, for the calls made inside this block."""
    import logging

    from astropy import log
    from astropy.utils.exceptions import AstropyWarning

    heard: list[str] = []
    this_thread = threading.get_ident()

    def keep(record: logging.LogRecord) -> bool:
        if record.thread != this_thread:
            return True
        heard.append(record.getMessage())
        return False

    with _ASTROPY_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log.addFilter(keep)
        try:
            yield heard
        finally:
            log.removeFilter(keep)
            heard.extend(str(warning.message) for warning in caught if issubclass(warning.category, AstropyWarning))


def _fixes(heard: list[str]) -> list[str]:
    """Astropy's messages as one note: 'RADECSYS: the RADECSYS keyword is deprecated, use RADESYSa'."""
    by_text: dict[str, list[str]] = {}
    for message in heard:
        first, _, rest = message.partition("\n")
        key, text = (first.split("=")[0].strip(), rest) if rest and "=" in first else ("", message)
        text = " ".join(text.split()).rstrip(".")
        # Dates and sites are not the sky positions; astropy says it removed SIP beside any PV distortion, SIP or not.
        if text and not any(part in text for part in ("datfix", "obsfix", "redundant SIP distortion")):
            by_text.setdefault(text, []).append(key)
    if not by_text:
        return []
    parts = [f"{', '.join(k for k in keys if k)}: {text}" if any(keys) else text for text, keys in by_text.items()]
    return ["its WCS header needed fixing as astropy read it (" + "; ".join(parts)[:200] + "); the FITS output keeps its cards as they were"]
