"""Tests for galcolor.data: a stable split, honest augmentation and what reaches the training loop."""

from __future__ import annotations

import random
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch
from PIL import Image

from galcolor.training.split import GalaxySet, label_of, split_of
from galcolor.training.data import augment_crop, load_split, training_batches
from galcolor.errors import GalcolorError
from galcolor.io.paths import find_inputs

# ---------------------------------------------------------------- split


def synthetic_names(n: int, offset: int = 0) -> list[PurePosixPath]:
    return [PurePosixPath(f"{'spirals' if i % 2 else 'non_spirals'}/{587722981 + i}") for i in range(offset, offset + n)]


def test_split_is_deterministic_and_independent_of_listing_order():
    names = synthetic_names(1000)
    first = {name: split_of(name, 0.15) for name in names}
    shuffled = names[:]
    random.Random(0).shuffle(shuffled)
    assert {name: split_of(name, 0.15) for name in shuffled} == first
    # Growing the dataset never moves an image that was already there between train and val.
    grown = synthetic_names(1500)
    random.Random(1).shuffle(grown)
    assert all(split_of(name, 0.15) == first[name] for name in grown if name in first)


@pytest.mark.parametrize("fraction", [0.15, 0.3])
def test_about_val_fraction_of_the_images_land_in_val(fraction):
    names = synthetic_names(1000)
    share = sum(split_of(name, fraction) == "val" for name in names) / len(names)
    assert fraction - 0.05 <= share <= fraction + 0.05


def test_a_larger_val_fraction_only_adds_to_val():
    names = synthetic_names(500)
    small = {n for n in names if split_of(n, 0.1) == "val"}
    large = {n for n in names if split_of(n, 0.2) == "val"}
    assert small < large


def test_split_is_pinned_across_versions_and_machines():
    """A changed hash would silently leak old validation images into training of resumed or compared runs."""
    assert split_of(PurePosixPath("non_spirals/102699"), 0.15) == "val"
    assert split_of(PurePosixPath("spirals/101756"), 0.15) == "train"
    assert split_of(PurePosixPath("non_spirals/101654"), 0.15) == "train"


def test_real_sdss_train_and_val_are_disjoint(sdss_dir):
    found, missing = find_inputs([sdss_dir])
    assert not missing and len(found) >= 1000
    relatives = [relative for _, relative in found]
    train = {r for r in relatives if split_of(r, 0.15) == "train"}
    val = {r for r in relatives if split_of(r, 0.15) == "val"}
    assert train.isdisjoint(val)
    assert train | val == set(relatives)
    assert 0.10 <= len(val) / len(relatives) <= 0.20
    # Both classes are represented in validation, so the class-separation metric is measurable.
    assert {label_of(r) for r in val} == {0, 1}
    # The same galaxy id never sits on both sides (a file under two folders would be a leak).
    assert {r.name for r in train}.isdisjoint({r.name for r in val})


def test_load_split_train_and_val_partition_the_folder(few_galaxies):
    train = load_split(few_galaxies, "train", 0.15, progress=False)
    val = load_split(few_galaxies, "val", 0.15, progress=False)
    everything = load_split(few_galaxies, "all", progress=False)
    assert len(everything) == 12
    assert set(train.relatives).isdisjoint(val.relatives)
    assert set(train.relatives) | set(val.relatives) == set(everything.relatives)
    assert all(split_of(r, 0.15) == "val" for r in val.relatives)
    assert sorted(everything.labels) == [0] * 6 + [1] * 6
    for image in everything.images:
        assert image.dtype == torch.uint8 and image.shape == (3, 256, 256)


def test_max_images_takes_a_stable_subset(few_galaxies):
    first = load_split(few_galaxies, "all", max_images=5, progress=False)
    again = load_split(few_galaxies, "all", max_images=5, progress=False)
    assert len(first) == 5
    assert first.relatives == again.relatives


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "relative, label",
    [
        ("spirals/123", 1),
        ("Spirals/123", 1),
        ("gz2/spiral/123", 1),
        ("non_spirals/123", 0),
        ("non-spirals/123", 0),
        ("ellipticals/123", 0),
        ("other/123", None),
        ("123", None),
        ("spirals", None),  # a file called "spirals" is not in a spirals folder
        ("mixed/not_spirals_really/1", None),
    ],
)
def test_label_of(relative, label):
    assert label_of(PurePosixPath(relative)) == label


# ---------------------------------------------------------------- augmentation


def coded_image(height: int, width: int) -> tuple[torch.Tensor, np.ndarray]:
    """A (3, H, W) uint8 image where every pixel has a unique colour that encodes its position.

    R and G hold the pixel's index + 1 (never black); B is a checksum of R and G, so a crop that
    moved one channel relative to the others (colour no longer aligned with lightness) shows up.
    """
    index = np.arange(1, height * width + 1).reshape(height, width)
    red, green = index % 256, index // 256
    blue = checksum(red, green)
    return torch.from_numpy(np.stack([red, green, blue]).astype(np.uint8)), index


def checksum(red, green):
    return (red * 37 + green * 101 + 7) % 256


def decode(crop: torch.Tensor) -> np.ndarray:
    """(3, c, c) crop -> (c, c) source index, 0 for black padding; asserts channels stayed aligned."""
    red, green, blue = (crop[i].numpy().astype(np.int64) for i in range(3))
    index = red + 256 * green
    content = index > 0
    np.testing.assert_array_equal(blue[content], checksum(red, green)[content])
    assert (blue[~content] == 0).all()
    return index


def dihedral(grid: np.ndarray) -> dict[tuple[int, bool], np.ndarray]:
    return {(k, flip): np.flip(np.rot90(grid, k), 1) if flip else np.rot90(grid, k) for k in range(4) for flip in (False, True)}


def locate(crop_index: np.ndarray, source_index: np.ndarray) -> list[tuple[tuple[int, bool], int, int]]:
    """Every (transform, top, left) such that the crop is exactly that window of the transformed source."""
    height, width = crop_index.shape
    matches = []
    for key, grid in dihedral(source_index).items():
        where = np.argwhere(grid == crop_index[0, 0])
        for top, left in where:
            window = grid[top : top + height, left : left + width]
            if window.shape == crop_index.shape and np.array_equal(window, crop_index):
                matches.append((key, int(top), int(left)))
    return matches


@pytest.mark.parametrize("shape", [(40, 40), (36, 52)])
def test_augment_crop_is_a_rotation_or_flip_of_a_source_window(shape):
    image, source = coded_image(*shape)
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(48):
        crop = augment_crop(image, 24, 0.25, generator)
        assert crop.shape == (3, 24, 24) and crop.dtype == torch.uint8
        index = decode(crop)
        assert (index > 0).all()  # no padding needed: the source is larger than the crop
        matches = locate(index, source)
        assert len(matches) == 1, "the crop is not a rotated/flipped window of the source"
        seen.add(matches[0][0])
    # Over many draws all eight rotations and reflections occur: the sky has no up and no handedness.
    assert len(seen) == 8


def test_augment_crop_without_jitter_is_centred():
    image, source = coded_image(40, 40)
    generator = torch.Generator().manual_seed(3)
    for _ in range(16):
        (key, top, left), = locate(decode(augment_crop(image, 16, 0.0, generator)), source)
        assert (top, left) == (12, 12)


def test_augment_crop_jitter_keeps_the_crop_near_the_centre():
    image, source = coded_image(64, 64)
    generator = torch.Generator().manual_seed(4)
    for _ in range(32):
        (key, top, left), = locate(decode(augment_crop(image, 32, 0.25, generator)), source)
        assert abs(top - 16) <= 4 and abs(left - 16) <= 4  # within jitter * half the free margin


def test_augment_crop_is_reproducible_from_the_generator():
    image, _ = coded_image(40, 40)
    first = [augment_crop(image, 16, 0.5, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(first[0], first[1])


@pytest.mark.parametrize("shape", [(20, 24), (10, 40)])
def test_images_smaller_than_the_crop_are_padded_with_black(shape):
    image, source = coded_image(*shape)
    generator = torch.Generator().manual_seed(1)
    for _ in range(8):
        crop = augment_crop(image, 32, 0.25, generator)
        assert crop.shape == (3, 32, 32)
        index = decode(crop)
        content = index > 0
        if max(shape) <= 32:
            # Every source pixel is in the crop exactly once; the rest is black.
            assert sorted(index[content].tolist()) == sorted(source.ravel().tolist())
        else:
            assert len(set(index[content].tolist())) == content.sum()
        assert (crop[:, ~torch.from_numpy(content)] == 0).all()
        assert (~content).sum() >= 32 * 32 - source.size
        # The content is one solid rotated/flipped window of the source, padding only around it.
        rows = np.argwhere(content.any(axis=1)).ravel()
        cols = np.argwhere(content.any(axis=0)).ravel()
        block = index[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert (block > 0).all() and block.size == content.sum()
        assert len(locate(block, source)) == 1


# ---------------------------------------------------------------- batches


def constant_set(n: int, size: int = 24) -> GalaxySet:
    """Images of one flat colour each, the colour telling which image it is."""
    images = [torch.full((3, size, size), 10 * (i + 1), dtype=torch.uint8) for i in range(n)]
    return GalaxySet(images, [None] * n, [PurePosixPath(str(i)) for i in range(n)], [])


def which_images(batch: torch.Tensor) -> list[int]:
    return [int(image[0, 0, 0]) // 10 - 1 for image in batch]


def test_training_batches_are_full_and_use_each_image_at_most_once():
    dataset = constant_set(11)
    batches = list(training_batches(dataset, 4, 16, 0.25, torch.Generator().manual_seed(0)))
    assert len(batches) == 2  # 11 // 4: the last partial batch is dropped (batch norm dislikes tiny batches)
    for indices, batch in batches:
        assert batch.shape == (4, 3, 16, 16) and batch.dtype == torch.uint8
        assert indices == which_images(batch)  # the trainer finds each crop's whole image by its index
    used = [i for _, batch in batches for i in which_images(batch)]
    assert len(used) == len(set(used)) == 8


def test_a_set_smaller_than_one_batch_is_one_batch():
    batches = list(training_batches(constant_set(3), 8, 16, 0.25, torch.Generator().manual_seed(0)))
    assert len(batches) == 1
    assert sorted(which_images(batches[0][1])) == [0, 1, 2]


def test_training_batches_depend_only_on_the_generator_seed():
    image, _ = coded_image(40, 40)
    dataset = GalaxySet([image] * 3 + [coded_image(36, 52)[0]] * 3, [None] * 6, [PurePosixPath(str(i)) for i in range(6)], [])

    def epoch(seed):
        return list(training_batches(dataset, 3, 16, 0.25, torch.Generator().manual_seed(seed)))

    first, again, other = epoch(5), epoch(5), epoch(6)
    assert all(torch.equal(a[1], b[1]) and a[0] == b[0] for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(first, other, strict=True))


def test_epochs_see_different_orders():
    dataset = constant_set(12)
    orders = {tuple(i for _, b in training_batches(dataset, 4, 16, 0.0, torch.Generator().manual_seed(s)) for i in which_images(b)) for s in range(4)}
    assert len(orders) > 1


# ---------------------------------------------------------------- loading


def write_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_load_split_keeps_pixels_channels_and_orientation(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    write_png(tmp_path / "spirals" / "a.png", pixels)
    dataset = load_split(tmp_path, "all", progress=False)
    assert len(dataset) == 1 and dataset.skipped == []
    assert dataset.labels == [1] and dataset.relatives == [PurePosixPath("spirals/a")]
    np.testing.assert_array_equal(dataset.images[0].permute(1, 2, 0).numpy(), pixels)


def test_load_split_skips_grey_and_broken_files_and_lists_them(tmp_path):
    rng = np.random.default_rng(1)
    write_png(tmp_path / "spirals" / "colour.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    write_png(tmp_path / "spirals" / "grey.png", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    grey_rgb = np.repeat(rng.integers(0, 256, (16, 16, 1), dtype=np.uint8), 3, axis=2)
    write_png(tmp_path / "non_spirals" / "grey_rgb.png", grey_rgb)
    (tmp_path / "non_spirals" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "non_spirals" / "notes.txt").write_text("not an image at all")
    dataset = load_split(tmp_path, "all", progress=False)
    assert dataset.relatives == [PurePosixPath("spirals/colour")]
    assert len(dataset.skipped) == 3
    skipped = "\n".join(dataset.skipped)
    for name in ("grey.png", "grey_rgb.png", "broken.jpg"):
        assert name in skipped
    assert all("\n" not in line for line in dataset.skipped)


@pytest.mark.parametrize("content", ["empty", "grey", "broken"])
def test_load_split_refuses_a_folder_with_no_usable_colour_images(tmp_path, content):
    folder = tmp_path / "data"
    folder.mkdir()
    if content == "grey":
        for i in range(3):
            write_png(folder / f"g{i}.png", np.full((16, 16), 40 * i, dtype=np.uint8))
    elif content == "broken":
        (folder / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(GalcolorError) as err:
        load_split(folder, "all", progress=False)
    message = str(err.value)
    assert str(folder) in message and "\n" not in message
    assert "no usable colour images" in message


def test_load_split_refuses_a_missing_folder_and_an_unknown_split(tmp_path):
    with pytest.raises(GalcolorError, match="not a folder"):
        load_split(tmp_path / "absent", "train", progress=False)
    write_png(tmp_path / "a.png", np.zeros((16, 16, 3), dtype=np.uint8))
    with pytest.raises(GalcolorError, match="unknown split"):
        load_split(tmp_path, "test", progress=False)


# ---------------------------------------------------------------- several surveys


def test_folder_weights_set_each_folders_share_of_an_epoch(few_galaxies):
    from galcolor.training.data import epoch_order, load_folders

    spirals, others = few_galaxies / "spirals", few_galaxies / "non_spirals"
    mixed = load_folders([spirals, others], "all", folder_weights=[3.0, 1.0], progress=False)
    assert len(mixed) == 12 and len(set(mixed.relatives)) == 12
    assert mixed.labels[:6] == [1] * 6 and mixed.labels[6:] == [0] * 6
    generator = torch.Generator().manual_seed(0)
    drawn = [i for _ in range(200) for i in epoch_order(mixed, generator)]
    share_of_first = sum(i < 6 for i in drawn) / len(drawn)
    assert abs(share_of_first - 0.75) < 0.03


def test_folder_weights_must_match_the_folders(few_galaxies):
    from galcolor.training.data import load_folders

    with pytest.raises(GalcolorError, match="one weight per folder"):
        load_folders([few_galaxies / "spirals", few_galaxies / "non_spirals"], "all", folder_weights=[1.0], progress=False)
    with pytest.raises(GalcolorError, match="negative"):
        load_folders([few_galaxies / "spirals"], "all", folder_weights=[-1.0], progress=False)


def test_training_on_two_folders_records_both(few_galaxies, tmp_path):
    import json

    from galcolor.app.cli import main

    run = tmp_path / "run"
    code = main(["train", str(few_galaxies / "spirals"), str(few_galaxies / "non_spirals"), "--folder-weights", "2", "1",
                 "--out", str(run), "--epochs", "1", "--width", "4", "--depth", "2", "--crop", "32", "--batch-size", "4",
                 "--val-fraction", "0.3", "-q"])
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    assert [Path(d).name for d in config["data_dir"]] == ["spirals", "non_spirals"]
    assert config["train"]["folder_weights"] == [2.0, 1.0]
