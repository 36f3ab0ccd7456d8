"""Colour many files: decode ahead in threads, colour, write atomically, and report every file."""

from __future__ import annotations

import copy
import dataclasses
import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from .arrays import colorize_lab, colorize_lab_batch
from ..models.checkpoint import LoadedModel
from ..color.lab import lab_array_to_rgb8
from ..errors import GalcolorError, InputError, Stopped
from .diversity import extra_outputs
from .interrupts import first_interrupt_only
from .science_outputs import MAP_SUFFIX, science_of, write_maps
from ..io.fits_output import write_fits_rgb
from .outputs import beside, write_outputs, written
from .bands import lab_bands
from .predict import TILE, Verdict
from ..io.decode import DEFAULT_MAX_PIXELS, DecodedImage, read_image
from ..io.atomic import FOLDER_PNG_LEVEL, PngRowWriter, atomic_output
from ..io.paths import find_inputs, output_path


@dataclass
class FileOutcome:
    source: str
    output: str | None
    status: str  # "coloured", "failed" or "skipped"
    message: str = ""
    colour: dict | None = None  # what decided the colour (predict.Verdict): survey and probability, caution, galaxy colour
    science: dict | None = None  # what the colour says (science.ScienceReading), with --science; {"unread": why} where it was not read
    notes: list[str] = field(default_factory=list)  # what the user should know of an input coloured or skipped, one line each


def colour_note(verdict: Verdict) -> str:
    """The verdict in a few words, for a progress line and a report's message."""
    parts = []
    if verdict.survey is not None:
        parts.append(f"as {verdict.survey} ({verdict.survey_probability:.0%})")
    if verdict.colour_kept < 0.995:
        parts.append("faded to grey by caution (unlike its training surveys)" if verdict.colour_kept < 0.005
                     else f"caution kept {verdict.colour_kept:.0%} of the colour")
    if verdict.galaxy_colour is not None:
        a, b = verdict.galaxy_colour
        parts.append(f"galaxy colour a* {a:+.1f} b* {b:+.1f} from {'your hint' if verdict.galaxy_colour_from == 'hint' else 'the galaxy-colour stage'}")
    return ", ".join(parts)


@dataclass(frozen=True)
class Extras:
    """What to write beside each coloured PNG (samples: classification models only)."""

    samples: int = 0
    uncertainty: bool = False
    seed: int = 0
    fits: bool = False  # also <stem>.fits: colour planes with the input's WCS
    sample_temperature: float = 1.0
    science: bool = False  # read what the colour says (FileOutcome.science)
    science_maps: bool = False  # and write <stem>.starforming.png (and .starforming.fits for FITS input)

    def suffixes(self) -> list[str]:
        """What each output's stem is followed by in the files written beside its PNG."""
        return ([".fits"] if self.fits else []) + ([MAP_SUFFIX] if self.science_maps else []) + [f".sample-{k}.png" for k in range(1, self.samples + 1)] + (
            [".uncertainty.npy", ".uncertainty.png"] if self.uncertainty else [])


@dataclass
class Job:
    source: Path
    output: Path
    hint: tuple[float, float] | None = None  # the galaxy's mean (a*, b*) from the user, for this input alone
    hint_error: str | None = None  # why this input's colour reference could not be used: the job fails with it


def plan_jobs(inputs: Sequence[str | Path], out_dir: Path, overwrite: bool, skip_existing: bool,
              extras: Extras | None = None) -> tuple[list[Job], list[FileOutcome]]:
    """Map inputs to outputs, refusing what would lose data: writing over an input, or two inputs onto one output.
    With skip_existing, a file is skipped only when its PNG and every extra asked for exist."""
    left_out: list[tuple[Path, str]] = []  # links followed to an input already, loops, broken links
    found, missing = find_inputs(inputs, out_dir, left_out)
    outcomes = [FileOutcome(str(p), None, "failed", f"{p}: no such file or folder") for p in missing]
    outcomes += [FileOutcome(str(p), None, "skipped", why, notes=[why]) for p, why in left_out]
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
        if skip_existing and all(p.exists() for p in [target, *(beside(target, s) for s in (extras.suffixes() if extras else []))]):
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
    workers: int | None = None,
    progress: bool = True,
    extras: Extras | None = None,
    compress_level: int = FOLDER_PNG_LEVEL,
) -> list[FileOutcome]:
    """Colour each job's input into its output; returns one outcome per job, in job order.

    On the CPU, `workers` lanes (default: one per intra-op thread torch was given, i.e. per core)
    each take a file through decode, colour and encode on one thread, with a replica of the model:
    small images keep a core far better busy than one forward pass split over several (and than a
    batch of them, whose activations outgrow the caches), and decoding and encoding run in
    parallel too. On a GPU, decoding and PNG
    encoding run in `workers` threads (default 2) while the network colours consecutive images of
    the same size together, up to batch_size at a time. Either way an image above the tile size
    is streamed: read, coloured and written band by band of rows, one such image at a time."""
    with tqdm(total=len(jobs), unit="img", desc="colouring", disable=not progress) as bar:
        if next(model.network.parameters()).device.type == "cpu":
            return _colorize_in_lanes(jobs, model, max_pixels, workers, extras, compress_level, bar)
        return _colorize_in_batches(jobs, model, max_pixels, batch_size, workers or 2, extras, compress_level, bar)


def _colorize_in_lanes(jobs, model, max_pixels, workers, extras, compress_level, bar) -> list[FileOutcome]:
    threads = torch.get_num_threads()
    # One lane per thread: on the 2-core Xeon a third lane (to cover fsync waits) was 5-20 %
    # slower, the cores' shared memory bandwidth being the limit rather than idle time.
    lanes = max(1, min(workers or threads, len(jobs)))
    replicas: queue.SimpleQueue = queue.SimpleQueue()
    if lanes == 1:  # a single file: its network may as well use every thread torch has (Ctrl-C reaches it directly)
        replicas.put(model)
        return [_settled(job, _colour_one, bar, job, replicas, max_pixels, extras, compress_level) for job in jobs]
    # Each lane's forward hooks (caution's feature pooling) must see only its own images, so each
    # lane runs its own copy of the network; galcolor's networks weigh a few MB.
    for _ in range(lanes):
        replicas.put(dataclasses.replace(model, network=copy.deepcopy(model.network)))
    per_lane = max(1, threads // lanes)  # lanes share the cores; they do not also split each op across them
    torch.set_num_threads(per_lane)
    outcomes: list[FileOutcome] = []
    # Ctrl-C reaches only this thread. The lanes must stop too, and soon (a large image takes
    # minutes): they check `stop` between tiles, and their unfinished outputs are deleted as they
    # unwind, before the interpreter exits around them.
    stop = threading.Event()
    try:
        with first_interrupt_only(stop), ThreadPoolExecutor(max_workers=lanes) as pool:
            pending: deque[tuple[Job, Future]] = deque()
            try:
                for job in jobs:  # a few files ahead of the oldest unfinished one, not the whole folder queued
                    pending.append((job, pool.submit(_colour_one, job, replicas, max_pixels, extras, compress_level, stop)))
                    if len(pending) >= 2 * lanes:
                        outcomes.append(_settled(*pending.popleft(), bar))
                while pending:
                    outcomes.append(_settled(*pending.popleft(), bar))
            except KeyboardInterrupt:
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        torch.set_num_threads(threads)
    return outcomes


_LARGE_IMAGES = threading.Lock()  # one streamed image at a time: their working sets are the large ones


def _colour_one(job: Job, replicas: queue.SimpleQueue, max_pixels: int, extras: Extras | None, compress_level: int,
                stop: threading.Event | None = None) -> tuple[Verdict | None, dict | None, tuple[str, ...]]:
    if job.hint_error:
        raise GalcolorError(job.hint_error)
    decoded = read_image(job.source, max_pixels=max_pixels)
    replica = replicas.get()
    verdicts: list[Verdict] = []
    try:
        model = for_job(replica, job)
        if max(decoded.shape) > TILE:
            with _LARGE_IMAGES:
                if stop is not None and stop.is_set():  # waited for the lock while the run was being stopped
                    raise Stopped("interrupted")
                return _write_streamed(job.output, decoded, model, extras, compress_level, stop, verdicts)
        lab, _ = colorize_lab(decoded.rgb, model, verdicts)
        extra, problem = _extra_arrays(job, lab, model, extras)
    finally:
        replicas.put(replica)
    verdict = verdicts[0] if verdicts else None
    science, notes = _science(job, model, lab, verdict, extras, decoded)
    header = decoded.fits_header if extras and extras.fits else None
    notes += write_outputs(job.output, lab_array_to_rgb8(lab), extra, problem, bool(extras and extras.fits), header, compress_level)
    return verdict, science, notes


def _science(job: Job, model: LoadedModel, lab, verdict: Verdict | None, extras: Extras | None,
             decoded: DecodedImage) -> tuple[dict | None, tuple[str, ...]]:
    """The image's science reading, its maps written (before the PNG, as every extra is), and the
    notes about a FITS input's header that writing its map gave."""
    if extras is None or not (extras.science or extras.science_maps):
        return None, ()
    reading, labels = science_of(model, lab, verdict)
    notes = write_maps(job.output, labels, decoded.fits_header) if extras.science_maps else ()
    return reading.as_dict(), notes


def _unread(extras: Extras | None, why: str) -> dict | None:
    return {"unread": why} if extras is not None and (extras.science or extras.science_maps) else None


def for_job(model: LoadedModel, job: Job) -> LoadedModel:
    """The model with this input's own colour hint, where it has one."""
    return model if job.hint is None else model.with_galaxy_colour(job.hint)


def _settled(job: Job, work: Future | Callable[..., tuple], bar, *args) -> FileOutcome:
    """The outcome of a job's work: a future, or a function run here with args; each returns the
    image's Verdict where it was coloured, its science reading where one was asked for, and notes."""
    try:
        verdict, science, notes = work.result() if isinstance(work, Future) else work(*args)
        note = colour_note(verdict) if isinstance(verdict, Verdict) else ""
        outcome = FileOutcome(str(job.source), str(job.output), "coloured", note,
                              verdict.as_dict() if isinstance(verdict, Verdict) else None, science,
                              [f"{job.source}: {text}" for text in dict.fromkeys(notes)])
        if note:
            bar.set_postfix_str(f"{job.source.name}: {note}", refresh=False)
    except InputError as err:  # the input could not be read: no output was attempted
        outcome = FileOutcome(str(job.source), None, "failed", str(err))
    except GalcolorError as err:
        outcome = FileOutcome(str(job.source), str(job.output), "failed", str(err))
    bar.update(1)
    return outcome


def _write_streamed(path: Path, decoded: DecodedImage, model: LoadedModel, extras: Extras | None, compress_level: int,
                    stop: threading.Event | None = None, verdicts: list[Verdict] | None = None) -> tuple[Verdict | None, dict | None, tuple]:
    """Colour a large image band by band of rows into a PNG written as the bands arrive: memory
    holds the decoded pixels, one row of tiles and (for a cautious model) ab as float16."""
    height, width = decoded.shape
    keep = np.empty((height, width, 3), np.uint8) if extras and extras.fits else None  # FITS output needs the whole image
    notes: tuple[str, ...] = ()
    with atomic_output(path) as tmp, open(tmp, "wb") as file:
        png = PngRowWriter(file, width, height, compress_level=compress_level)
        for top, lab in lab_bands(model, decoded.rgb_rows, height, width, stop=stop, verdicts=verdicts):
            for start in range(0, lab.shape[2], _OUTPUT_BAND):  # gamut fitting's temporaries stay small
                rgb8 = lab_array_to_rgb8(lab[0, :, start : start + _OUTPUT_BAND].permute(1, 2, 0).numpy())
                png.write(rgb8)
                if keep is not None:
                    keep[top + start : top + start + len(rgb8)] = rgb8
        png.close()
        if keep is not None:  # before the PNG is in place, as write_outputs does
            notes = write_fits_rgb(beside(path, ".fits"), keep, decoded.fits_header)
    if extras and (extras.samples or extras.uncertainty):  # the colour is written; only the extras are refused
        raise GalcolorError(f"{decoded.source}: coloured, but --samples and --uncertainty work on images up to {TILE} px a side")
    return (verdicts[0] if verdicts else None), _unread(extras, f"science is read on images up to {TILE} px a side"), notes


_OUTPUT_BAND = 128


def _colorize_in_batches(jobs, model, max_pixels, batch_size, workers, extras, compress_level, bar) -> list[FileOutcome]:
    """Decoding and PNG encoding in a thread pool (they release the GIL), so the network rarely
    waits on files; at most 2*workers images wait decoded."""
    outcomes: list[FileOutcome] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque[tuple[Job, Future]] = deque()
        writes: deque[tuple[Job, Future]] = deque()
        queue_ = iter(jobs)

        def refill() -> None:
            while len(pending) < max(2 * workers, batch_size):
                job = next(queue_, None)
                if job is None:
                    return
                pending.append((job, pool.submit(_read_for, job, max_pixels)))

        def finish_writes(limit: int) -> None:
            while len(writes) > limit:
                outcomes.append(_settled(*writes.popleft(), bar))

        refill()
        while pending:
            batch: list[tuple[Job, DecodedImage]] = []
            while pending and len(batch) < batch_size:
                job, future = pending[0]
                try:
                    decoded: DecodedImage = future.result()
                except GalcolorError:
                    pending.popleft()
                    refill()
                    outcomes.append(_settled(job, future, bar))
                    continue
                if max(decoded.shape) > TILE:
                    if batch:
                        break  # colour the batch so far first, then this image alone
                    pending.popleft()
                    refill()
                    finish_writes(limit=0)  # its band-by-band output must not wait behind queued writes
                    outcomes.append(_settled(job, _write_streamed, bar, job.output, decoded, for_job(model, job), extras, compress_level))
                    continue
                if batch and (decoded.shape != batch[0][1].shape or job.hint != batch[0][0].hint):
                    break  # only images of one size, and of one colour hint, share a forward pass
                pending.popleft()
                refill()
                batch.append((job, decoded))
            if not batch:
                continue
            batch_model, verdicts = for_job(model, batch[0][0]), []
            predicted = colorize_lab_batch([decoded.rgb for _, decoded in batch], batch_model, verdicts)
            for (job, decoded), lab, verdict in zip(batch, predicted, verdicts):
                extra, problem = _extra_arrays(job, lab, batch_model, extras)
                science, notes = _science(job, batch_model, lab, verdict, extras, decoded)
                header = decoded.fits_header if extras and extras.fits else None
                writes.append((job, pool.submit(written, (verdict, science, notes), job.output, lab_array_to_rgb8(lab), extra, problem,
                                                bool(extras and extras.fits), header, compress_level)))
            finish_writes(limit=workers)
        finish_writes(limit=0)
    return in_job_order(outcomes, jobs)


def _read_for(job: Job, max_pixels: int) -> DecodedImage:
    if job.hint_error:
        raise GalcolorError(job.hint_error)
    return read_image(job.source, max_pixels=max_pixels)


def in_job_order(outcomes: Sequence[FileOutcome], jobs: Sequence[Job]) -> list[FileOutcome]:
    """Outcomes sorted into the order of their jobs (plan_jobs gives each source one job)."""
    position = {str(job.source): index for index, job in enumerate(jobs)}
    return sorted(outcomes, key=lambda outcome: position[outcome.source])


def _extra_arrays(job: Job, lab, model: LoadedModel, extras: Extras | None) -> tuple[dict, str | None]:
    if extras is None or not (extras.samples or extras.uncertainty):
        return {}, None
    try:
        return extra_outputs(model, lab, extras.samples, extras.uncertainty, extras.seed, extras.sample_temperature), None
    except GalcolorError as err:
        return {}, f"{job.source}: coloured, but {err}"


def outcomes_as_dicts(outcomes: Sequence[FileOutcome]) -> list[dict]:
    return [{k: v for k, v in asdict(o).items()} for o in outcomes]
