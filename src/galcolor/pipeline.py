"""Colour many files: decode ahead in threads, colour, write atomically, and report every file."""

from __future__ import annotations

import io as io_module
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np
from tqdm import tqdm

from .api import colorize_lab_batch
from .checkpoint import LoadedModel
from .color import lab_array_to_rgb8
from .errors import GalcolorError
from .diversity import extra_outputs
from .fits_output import write_fits_rgb
from .io import DEFAULT_MAX_PIXELS, atomic_write_bytes, DecodedImage, find_inputs, output_path, read_image, write_png


@dataclass
class FileOutcome:
    source: str
    output: str | None
    status: str  # "coloured", "failed" or "skipped"
    message: str = ""


@dataclass
class Job:
    source: Path
    output: Path


def plan_jobs(inputs: Sequence[str | Path], out_dir: Path, overwrite: bool, skip_existing: bool) -> tuple[list[Job], list[FileOutcome]]:
    """Map inputs to outputs, refusing what would lose data: writing over an input, or two inputs onto one output."""
    found, missing = find_inputs(inputs)
    outcomes = [FileOutcome(str(p), None, "failed", f"{p}: no such file or folder") for p in missing]
    jobs, claimed = [], {}
    sources = {source.resolve(): source for source, _ in found}
    out_root = Path(out_dir).resolve()
    for source, relative in found:
        try:
            target = output_path(out_dir, PurePosixPath(relative))
        except GalcolorError as err:
            outcomes.append(FileOutcome(str(source), None, "failed", str(err)))
            continue
        key = target.resolve()
        if not key.is_relative_to(out_root):  # a symlink inside the output folder pointing elsewhere
            outcomes.append(FileOutcome(str(source), str(target), "failed", f"{source}: output {target} leads outside {out_dir} through a symlink; refused"))
            continue
        if key in claimed:
            outcomes.append(FileOutcome(str(source), str(target), "failed", f"{source}: same output {target} as {claimed[key]}; rename one of them"))
            continue
        if key == source.resolve() and not overwrite:
            outcomes.append(FileOutcome(str(source), str(target), "failed", f"{source}: output would replace this input; choose another -o or pass --overwrite"))
            continue
        if key in sources and key != source.resolve():  # e.g. a.jpg -> a.png over the input a.png, --overwrite or not
            outcomes.append(FileOutcome(str(source), str(target), "failed", f"{source}: output {target} would replace another input, {sources[key]}; choose another -o"))
            continue
        claimed[key] = source
        if skip_existing and target.exists():
            outcomes.append(FileOutcome(str(source), str(target), "skipped", "output exists (--skip-existing)"))
            continue
        jobs.append(Job(source, target))
    return jobs, outcomes


def colorize_files(
    jobs: Sequence[Job],
    model: LoadedModel,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    batch_size: int = 8,
    workers: int = 2,
    progress: bool = True,
    extras: Extras | None = None,
) -> list[FileOutcome]:
    """Colour each job's input into its output. Decoding and PNG encoding run in a small thread pool
    (they release the GIL), so the network rarely waits on files; at most 2*workers images wait decoded.
    Consecutive images of the same size are coloured together, up to batch_size at a time."""
    outcomes: list[FileOutcome] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, tqdm(
        total=len(jobs), unit="img", desc="colouring", disable=not progress
    ) as bar:
        pending: deque[tuple[Job, Future]] = deque()
        writes: deque[tuple[Job, Future]] = deque()
        queue = iter(jobs)

        def refill() -> None:
            while len(pending) < max(2 * workers, batch_size):
                job = next(queue, None)
                if job is None:
                    return
                pending.append((job, pool.submit(read_image, job.source, max_pixels=max_pixels)))

        def finish_writes(limit: int) -> None:
            while len(writes) > limit:
                job, future = writes.popleft()
                outcomes.append(_settle(job, future, "coloured"))
                bar.update(1)

        refill()
        while pending:
            batch: list[tuple[Job, DecodedImage]] = []
            while pending and len(batch) < batch_size:
                job, future = pending[0]
                try:
                    decoded: DecodedImage = future.result()
                except GalcolorError as err:
                    pending.popleft()
                    refill()
                    outcomes.append(FileOutcome(str(job.source), None, "failed", str(err)))
                    bar.update(1)
                    continue
                if batch and decoded.rgb.shape != batch[0][1].rgb.shape:
                    break  # only images of one size share a forward pass
                pending.popleft()
                refill()
                batch.append((job, decoded))
            if not batch:
                continue
            predicted = colorize_lab_batch([decoded.rgb for _, decoded in batch], model)
            for (job, decoded), lab in zip(batch, predicted):
                extra, problem = _extra_arrays(job, lab, model, extras)
                header = decoded.fits_header if extras and extras.fits else None
                writes.append((job, pool.submit(_write_outputs, job.output, lab_array_to_rgb8(lab), extra, problem,
                                                bool(extras and extras.fits), header)))
            finish_writes(limit=workers)
        finish_writes(limit=0)
    return outcomes


@dataclass(frozen=True)
class Extras:
    """What to write beside each coloured PNG (classification models only)."""

    samples: int = 0
    uncertainty: bool = False
    seed: int = 0
    fits: bool = False  # also <stem>.fits: colour planes with the input's WCS


def _extra_arrays(job: Job, lab, model: LoadedModel, extras: Extras | None) -> tuple[dict, str | None]:
    if extras is None or not (extras.samples or extras.uncertainty):
        return {}, None
    try:
        return extra_outputs(model, lab, extras.samples, extras.uncertainty, extras.seed), None
    except GalcolorError as err:
        return {}, f"{job.source}: coloured, but {err}"


def _write_outputs(path: Path, rgb8, extra: dict, problem: str | None, fits: bool = False, header=None) -> None:
    """The coloured PNG, then its extras beside it (same stem), each atomically."""
    write_png(path, rgb8)
    stem = path.with_suffix("")
    if fits:
        write_fits_rgb(stem.with_name(stem.name + ".fits"), rgb8, header)
    for suffix, array in extra.items():
        target = stem.with_name(stem.name + suffix)
        if suffix.endswith(".npy"):
            buffer = io_module.BytesIO()
            np.save(buffer, array)
            atomic_write_bytes(target, buffer.getvalue())
        else:
            write_png(target, array)
    if problem:
        raise GalcolorError(problem)


def _settle(job: Job, future: Future, status: str) -> FileOutcome:
    try:
        future.result()
    except GalcolorError as err:
        return FileOutcome(str(job.source), str(job.output), "failed", str(err))
    return FileOutcome(str(job.source), str(job.output), status)


def outcomes_as_dicts(outcomes: Sequence[FileOutcome]) -> list[dict]:
    return [{k: v for k, v in asdict(o).items()} for o in outcomes]
