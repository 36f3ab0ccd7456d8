"""Public galaxy data sets: pinned downloads (pooch, SHA-256 checked).

``galcolor data download galaxy10-decals`` fetches Galaxy10 DECaLS (Leung & Bovy; 17,736 colour g/r/z
cutouts of 256x256 pixels with Galaxy Zoo classes) and checks it against the hash pinned here, so a
corrupted or altered file is refused rather than trained on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import GalcolorError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    filename: str
    url: str
    sha256: str
    description: str


REGISTRY: dict[str, DatasetInfo] = {
    "galaxy10-decals": DatasetInfo(
        name="galaxy10-decals",
        filename="Galaxy10_DECals.h5",
        url="https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5",
        sha256="19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571",
        description="Galaxy10 DECaLS: 17,736 galaxies, 256x256 g/r/z colour (uint8 'images'), 10 Galaxy Zoo classes ('ans')",
    ),
}


def default_data_dir() -> Path:
    """$GALCOLOR_DATA_DIR, else the OS cache folder (~/.cache/galcolor on Linux)."""
    env = os.environ.get("GALCOLOR_DATA_DIR")
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("galcolor"))


def _one_line(text: object, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _dataset(name: str) -> DatasetInfo:
    try:
        return REGISTRY[name]
    except KeyError:
        raise GalcolorError(f"unknown data set {name!r}: known ones are {', '.join(sorted(REGISTRY))}") from None


def download(
    name: str,
    directory: str | Path,
    url_override: str | None = None,
    progress: bool = True,
    *,
    known_hash_override: str | None = None,
) -> Path:
    """Download data set `name` into `directory` (kept if already there and intact); return its path.

    The file is fetched to a temporary name beside the final one and renamed only once its SHA-256
    matches the pinned hash (`known_hash_override`, a bare hex SHA-256, replaces it; for tests and
    mirrors). A mismatch or a network failure raises GalcolorError with one line, and leaves nothing
    under the final name.
    """
    import pooch
    import requests

    info = _dataset(name)
    sha256 = (known_hash_override or info.sha256).lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise GalcolorError(f"{name}: the expected SHA-256 must be 64 hex digits, got {sha256!r}")
    url = url_override or info.url
    directory = Path(directory)
    target = directory / info.filename
    if directory.exists() and not directory.is_dir():
        raise GalcolorError(f"{directory}: cannot download into it: it is a file, not a folder")

    logger = pooch.get_logger()
    saved_level = logger.level
    if not progress:
        logger.setLevel("WARNING")  # pooch logs "Downloading data from ..." at INFO
    try:
        path = pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256}",
            fname=info.filename,
            path=directory,
            downloader=pooch.HTTPDownloader(progressbar=progress, timeout=(30, 120)),
        )
    except ValueError as err:
        if "hash" not in str(err).lower():
            raise GalcolorError(f"could not download {name} from {url}: {_one_line(err)}") from None
        got = re.search(r"but got (\w+)", str(err))
        _remove_stale(target, sha256)
        raise GalcolorError(
            f"{name}: the file downloaded from {url} is corrupt or not the expected one "
            f"(SHA-256 {got.group(1)[:16] + '…' if got else 'different'}, expected {sha256[:16]}…); it was deleted, "
            f"nothing saved as {target}"
        ) from None
    except requests.exceptions.RequestException as err:
        raise GalcolorError(f"could not download {name} from {url}: {_request_reason(err)}") from None
    except OSError as err:  # a full disk, a folder we may not write to
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        raise GalcolorError(f"could not download {name} into {directory}: {where}{err.strerror or _one_line(err)}") from None
    finally:
        logger.setLevel(saved_level)
    return Path(path)


def _remove_stale(target: Path, sha256: str) -> None:
    """A file already under the final name that fails the pinned hash is no good to anyone: remove it."""
    if not target.is_file():
        return
    import pooch

    try:
        if pooch.file_hash(str(target), alg="sha256") != sha256:
            target.unlink()
    except OSError:
        pass


def _request_reason(err: Exception) -> str:
    import requests

    if isinstance(err, requests.exceptions.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code} {err.response.reason or ''}".strip()
    if isinstance(err, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(err, requests.exceptions.ConnectionError):
        # requests nests the socket error deep inside; its last clause is the useful part.
        text = _one_line(err, 1000)
        cause = re.search(r"(\[Errno [^\]]+\][^')\"]*|Name or service not known|Connection refused|Temporary failure in name resolution)", text)
        return f"connection failed ({cause.group(1).strip()})" if cause else "connection failed"
    return _one_line(err) or type(err).__name__
