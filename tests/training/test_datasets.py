"""galcolor.datasets: pinned downloads through pooch's real code path (served from 127.0.0.1), HDF5 reading."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason="HDF5 data sets need h5py: pip install h5py")
pytest.importorskip("pooch", reason="downloads need pooch: pip install pooch")

from galcolor.training import download, hdf5  # noqa: E402
from galcolor.errors import GalcolorError  # noqa: E402

N, SIDE = 12, 64
FINAL_NAME = download.REGISTRY["galaxy10-decals"].filename


def write_galaxy10_like(path: Path, images: np.ndarray, labels: np.ndarray | None) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(min(4, len(images)), *images.shape[1:]), compression="gzip")
        if labels is not None:
            f.create_dataset("ans", data=labels)
    return path


@pytest.fixture(scope="module")
def fixture_arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(N, SIDE, SIDE, 3), dtype=np.uint8)
    labels = (np.arange(N) % 10).astype(np.uint8)  # Galaxy10 stores its classes as uint8
    return images, labels


@pytest.fixture(scope="module")
def served(tmp_path_factory, fixture_arrays):
    """A local HTTP server (127.0.0.1, free port) holding good.h5, corrupt.h5 (one byte flipped) and its request log."""
    root = tmp_path_factory.mktemp("served")
    good = write_galaxy10_like(root / "good.h5", *fixture_arrays)
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / "corrupt.h5").write_bytes(bytes(data))
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            "base": f"http://127.0.0.1:{server.server_address[1]}",
            "sha256": hashlib.sha256(good.read_bytes()).hexdigest(),
            "good": good,
            "requests": requests,
        }
    finally:
        server.shutdown()
        server.server_close()


def test_registry_pins_galaxy10_decals() -> None:
    info = download.REGISTRY["galaxy10-decals"]
    assert info.filename == "Galaxy10_DECals.h5"
    assert info.url == "https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5"
    assert info.sha256 == "19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571"


def test_a_good_file_downloads_and_is_then_kept(served, tmp_path: Path) -> None:
    url = f"{served['base']}/good.h5"

    path = download.download("galaxy10-decals", tmp_path / "data", url_override=url, progress=False, known_hash_override=served["sha256"])

    assert path == tmp_path / "data" / FINAL_NAME
    assert path.read_bytes() == served["good"].read_bytes()
    fetched = served["requests"].count("/good.h5")
    again = download.download("galaxy10-decals", tmp_path / "data", url_override=url, progress=False, known_hash_override=served["sha256"])
    assert again == path and served["requests"].count("/good.h5") == fetched  # intact copy: no second download
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [FINAL_NAME]


def test_a_corrupted_download_is_refused_and_leaves_no_file(served, tmp_path: Path) -> None:
    directory = tmp_path / "data"
    with pytest.raises(GalcolorError) as err:
        download.download(
            "galaxy10-decals", directory, url_override=f"{served['base']}/corrupt.h5", progress=False,
            known_hash_override=served["sha256"],
        )
    message = str(err.value)
    assert "\n" not in message and message.startswith("galaxy10-decals: the file downloaded from ")
    assert "corrupt" in message and f"expected {served['sha256'][:16]}" in message
    assert not (directory / FINAL_NAME).exists()
    assert not directory.exists() or list(directory.iterdir()) == []  # pooch's temporary file is gone too


def test_the_pinned_hash_is_what_a_real_download_is_checked_against(served, tmp_path: Path) -> None:
    # Without an override, the registry's hash applies: our small file is not Galaxy10, so it is refused.
    with pytest.raises(GalcolorError, match="corrupt or not the expected one"):
        download.download("galaxy10-decals", tmp_path, url_override=f"{served['base']}/good.h5", progress=False)
    assert not (tmp_path / FINAL_NAME).exists()


def test_a_stale_corrupt_copy_under_the_final_name_is_removed(served, tmp_path: Path) -> None:
    (tmp_path / FINAL_NAME).write_bytes(b"half a file")
    with pytest.raises(GalcolorError, match="nothing saved as"):
        download.download(
            "galaxy10-decals", tmp_path, url_override=f"{served['base']}/corrupt.h5", progress=False,
            known_hash_override=served["sha256"],
        )
    assert not (tmp_path / FINAL_NAME).exists()


def test_network_errors_are_one_line(served, tmp_path: Path) -> None:
    with pytest.raises(GalcolorError) as missing:
        download.download("galaxy10-decals", tmp_path, url_override=f"{served['base']}/absent.h5", progress=False)
    assert str(missing.value) == f"could not download galaxy10-decals from {served['base']}/absent.h5: HTTP 404 File not found"

    with socket_closed() as port:
        url = f"http://127.0.0.1:{port}/x.h5"
        with pytest.raises(GalcolorError) as refused:
            download.download("galaxy10-decals", tmp_path, url_override=url, progress=False)
    message = str(refused.value)
    assert message.startswith(f"could not download galaxy10-decals from {url}: connection failed") and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_unknown_names_and_bad_hashes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GalcolorError, match="unknown data set 'galaxy11'.*galaxy10-decals"):
        download.download("galaxy11", tmp_path)
    with pytest.raises(GalcolorError, match="64 hex digits"):
        download.download("galaxy10-decals", tmp_path, known_hash_override="abc")


class socket_closed:
    """A port on 127.0.0.1 that nothing listens on."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc) -> None:
        return None


def test_read_hdf5_images_returns_the_pixels_and_labels(served, fixture_arrays) -> None:
    images, labels = fixture_arrays

    got, got_labels = hdf5.read_hdf5_images(served["good"])

    assert got.shape == (N, SIDE, SIDE, 3) and got.dtype == np.uint8
    assert np.array_equal(got, images)
    assert got_labels.dtype == np.int64 and got_labels.tolist() == labels.tolist()


def test_max_images_reads_a_spread_subset(served, fixture_arrays) -> None:
    images, labels = fixture_arrays

    got, got_labels = hdf5.read_hdf5_images(served["good"], max_images=4)

    picked = [0, 4, 7, 11]  # evenly spread over the 12, so a file sorted by class still mixes classes
    assert got.shape == (4, SIDE, SIDE, 3)
    assert np.array_equal(got, images[picked]) and got_labels.tolist() == labels[picked].tolist()


def test_a_file_without_labels_gives_none(tmp_path: Path, fixture_arrays) -> None:
    path = write_galaxy10_like(tmp_path / "nolabels.h5", fixture_arrays[0][:3], None)
    got, got_labels = hdf5.read_hdf5_images(path)
    assert got.shape == (3, SIDE, SIDE, 3) and got_labels is None


@pytest.mark.parametrize(
    "contents, problem",
    [
        ({"pixels": np.zeros((2, 8, 8, 3), np.uint8)}, "no 'images' dataset (found: pixels)"),
        ({"images": np.zeros((2, 8, 8), np.uint8)}, "'images' has shape (2, 8, 8)"),
        ({"images": np.zeros((2, 8, 8, 4), np.uint8)}, "'images' has shape (2, 8, 8, 4)"),
        ({"images": np.zeros((2, 8, 8, 3), np.float32)}, "'images' has dtype float32"),
        ({"images": np.zeros((0, 8, 8, 3), np.uint8)}, "'images' is empty"),
        ({"images": np.zeros((2, 8, 8, 3), np.uint8), "ans": np.zeros(3, np.int64)}, "'ans' has shape (3,)"),
    ],
)
def test_a_wrong_schema_is_refused_with_one_line_naming_the_file(tmp_path: Path, contents: dict, problem: str) -> None:
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        for key, value in contents.items():
            f.create_dataset(key, data=value)

    with pytest.raises(GalcolorError) as err:
        hdf5.read_hdf5_images(path)

    message = str(err.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_a_file_that_is_not_hdf5_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.h5"
    path.write_text("not HDF5\n")
    with pytest.raises(GalcolorError, match=r"notes\.h5: not an HDF5 file$"):
        hdf5.read_hdf5_images(path)
    with pytest.raises(GalcolorError, match="no such file"):
        hdf5.read_hdf5_images(tmp_path / "absent.h5")


def test_load_hdf5_split_partitions_the_file_like_a_folder(served, fixture_arrays) -> None:
    from galcolor.training.split import split_of

    images, labels = fixture_arrays
    train = hdf5.load_hdf5_split(served["good"], "train", val_fraction=0.3, progress=False)
    val = hdf5.load_hdf5_split(served["good"], "val", val_fraction=0.3, progress=False)

    names = [r.name for r in train.relatives + val.relatives]
    assert sorted(names) == [f"{i:05d}" for i in range(N)] and len(val) > 0 and len(train) > 0
    for dataset, split in ((train, "train"), (val, "val")):
        for image, label, relative in zip(dataset.images, dataset.labels, dataset.relatives):
            index = int(relative.name)
            assert relative == PurePosixPath("good", relative.name) and split_of(relative, 0.3) == split
            assert image.shape == (3, SIDE, SIDE) and np.array_equal(image.permute(1, 2, 0).numpy(), images[index])
            assert label == hdf5.GALAXY10_SPIRAL_LABELS.get(int(labels[index]))
    subset = hdf5.load_hdf5_split(served["good"], "all", max_images=5, progress=False)
    assert len(subset) == 5
