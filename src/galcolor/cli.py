"""The `galcolor` command: thin subcommands over the package's functions.

Exit codes: 0 success; 1 an error, or some files could not be coloured; 2 a usage error; 130 interrupted
(Ctrl-C); 143 terminated (SIGTERM, e.g. a batch scheduler's kill).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import GalcolorError
from .style import MAX_SATURATION, MUTED_SATURATION, STYLES, styled

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so that it unwinds the same way: unfinished outputs deleted."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _png_level(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"must be 0 to 9, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of at least 0, got {text}")
    return value


def _saturation(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= MAX_SATURATION:
        raise argparse.ArgumentTypeError(f"must lie between 0 and {MAX_SATURATION:g}, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie above 0 and at most 1, got {text}")
    return value


def _fraction_percent(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 100, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .config import ModelConfig, TrainConfig
    from .datasets import REGISTRY
    from .device import DEVICE_CHOICES
    from .infer import TILE
    from .io import DEFAULT_MAX_PIXELS, FITS_STRETCH_HELP, FOLDER_PNG_LEVEL

    model_defaults, train_defaults = ModelConfig(), TrainConfig()
    parser = argparse.ArgumentParser(prog="galcolor", description="Colour grayscale galaxy images with deep convolutional networks.")
    parser.add_argument("--version", action="version", version=f"galcolor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def style(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--style", choices=tuple(STYLES), default="auto",
                         help="colour style: auto (default) fades colour towards grey as an image looks less like the training survey, "
                              "at the model's default saturation (the shipped model's: 60%%, safe for surveys of unknown colour strength); "
                              "sdss: the training survey's full colour everywhere; "
                              f"muted: auto at {MUTED_SATURATION * 100:.0f}%% saturation, for surveys that render colour about half as strongly (DECaLS, GAMA)")
        sub.add_argument("--caution", type=_non_negative_float, default=None, metavar="S",
                         help="how strongly colour fades on unfamiliar images: colour x confidence**S (default: the style's; 0 turns it off)")
        sub.add_argument("--saturation", type=_saturation, default=None, metavar="F",
                         help=f"multiply the colour by F, 0 to {MAX_SATURATION:g} (default: the style's; 1 is the training survey's strength)")

    def common(sub: argparse.ArgumentParser, model: bool = True) -> None:
        if model:
            sub.add_argument("--model", type=Path, default=None, help="a galcolor .safetensors checkpoint (default: the shipped model)")
        sub.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="where the network runs (default: auto, CUDA when present)")
        sub.add_argument("-q", "--quiet", action="store_true", help="no progress bars or tables, only errors")
        sub.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    demo = commands.add_parser("demo", help="colour scikit-image's Hubble Deep Field from its L alone and score it")
    demo.add_argument("-o", "--out", type=Path, default=Path("galcolor-demo"), help="output folder (default: ./galcolor-demo)")
    style(demo)
    common(demo)

    colorize = commands.add_parser(
        "colorize",
        help="colour images or folders of images",
        description="Colour images from their lightness alone. JPEG, PNG (8/16-bit, grey, RGB, RGBA, palette), TIFF, BMP, GIF, WebP and FITS "
        "(also .fits.gz and fpack .fz) are read; a colour input is reduced to its L first. Each output is OUT_DIR/<relative path>.png at "
        "the input's own size; an OUT_DIR inside an input folder is not searched for inputs. " + FITS_STRETCH_HELP
        + " 32-bit integer TIFFs beyond 16-bit range and floating-point TIFFs beyond [0, 1] hold linear data too, and are stretched the same way.",
    )
    colorize.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders (searched recursively)")
    colorize.add_argument("-o", "--out", type=Path, required=True, metavar="OUT_DIR", help="output folder")
    colorize.add_argument("--batch-size", type=_positive_int, default=8, help="on a GPU: same-size images coloured together (default: 8); on a CPU each core colours its own images one by one")
    colorize.add_argument("--max-pixels", type=_positive_int, default=DEFAULT_MAX_PIXELS, help=f"refuse images larger than this (default: {DEFAULT_MAX_PIXELS:,})")
    colorize.add_argument("--skip-existing", action="store_true", help="leave files whose PNG and every extra asked for (--fits, --samples, --uncertainty) already exist (resume a killed run)")
    colorize.add_argument("--overwrite", action="store_true", help="allow an output to replace its own input file")
    colorize.add_argument("--samples", type=_non_negative_int, default=0, metavar="N",
                          help=f"also write N different plausible colourings, <stem>.sample-K.png (classification models; images up to {TILE} px a side)")
    colorize.add_argument("--uncertainty", action="store_true",
                          help="also write <stem>.uncertainty.png and .npy: how unsure the colour is, in ab units (classification models, and models with an error head "
                               f"such as the shipped one; images up to {TILE} px a side)")
    colorize.add_argument("--fits", action="store_true",
                          help="also write <stem>.fits: the colour planes as a cube that reads as [0, 1] (8-bit levels, BSCALE 1/255), keeping a FITS input's WCS")
    colorize.add_argument("--seed", type=int, default=0, help="seed of the --samples draws (default: 0)")
    colorize.add_argument("--sample-temperature", type=_positive_float, default=1.0, metavar="T",
                          help="draw --samples from the distribution sharpened by T: 1 (default) as trained, below 1 narrower and nearer the best guess")
    colorize.add_argument("--temperature", type=_share, default=None,
                          help="annealed-mean temperature of a classification model, above 0 and at most 1 (default: the one chosen on validation)")
    colorize.add_argument("--report", type=Path, default=None, help="write every file's outcome to this JSON file")
    colorize.add_argument("--compress-level", type=_png_level, default=FOLDER_PNG_LEVEL, metavar="0-9",
                          help=f"zlib level of the PNGs: the same pixels at every level, 9 smallest, 0 fastest (default: {FOLDER_PNG_LEVEL}; "
                               "Pillow's default 6 makes files about 8%% smaller and takes 3x longer)")
    style(colorize)
    common(colorize)

    train = commands.add_parser("train", help="train a model on a folder of colour images")
    train.add_argument("data_dir", type=Path, nargs="+", metavar="DATA_DIR",
                       help="folder of colour images (searched recursively), or a Galaxy10-style .h5 file; several for several surveys")
    train.add_argument("--folder-weights", type=_non_negative_float, nargs="+", default=None, metavar="W",
                       help="with several DATA_DIRs: each one's share of a training epoch (default: equal shares)")
    train.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run folder: checkpoints, config.json, log.csv")
    train.add_argument("--model", dest="arch", choices=("seed", "unet"), default=model_defaults.arch, help="architecture (default: unet)")
    train.add_argument("--width", type=_positive_int, default=model_defaults.base_width, help=f"U-Net base width (default: {model_defaults.base_width})")
    train.add_argument("--depth", type=_positive_int, default=model_defaults.depth, help=f"U-Net depth (default: {model_defaults.depth})")
    train.add_argument("--head", choices=("regress", "classify"), default=model_defaults.head,
                       help="regress: ab by regression (see --ab-loss); classify: ab bins with class rebalancing (Zhang et al. 2016)")
    train.add_argument("--ab-loss", choices=("l1", "de00"), default=train_defaults.ab_loss,
                       help="regress: l1 (default) on ab, or de00, CIEDE2000 against the truth (the metric evaluate reports first)")
    train.add_argument("--rebalance-mix", type=float, default=train_defaults.rebalance_mix, help="classify: λ of the class rebalancing (default: 0.5)")
    train.add_argument("--adversarial-weight", type=_non_negative_float, default=train_defaults.adversarial_weight,
                       help="weight of a PatchGAN (pix2pix) term; 0 (default) trains without a discriminator")
    train.add_argument("--lightness", choices=("canonical", "raw"), default=model_defaults.input_lightness,
                       help="canonical (default): the network sees L rank-matched to the training set, whatever the stretch; raw: L as given")
    train.add_argument("--augment", choices=("instrument", "none"), default=train_defaults.augment,
                       help="instrument (default): imitate other telescopes' stretch, noise, sky, PSF, resolution and JPEG; none: rotations, flips, crops")
    train.add_argument("--init-from", type=Path, default=None, help="start from this checkpoint's weights where they fit (fine-tuning)")
    train.add_argument("--epochs", type=_positive_int, default=train_defaults.epochs, help=f"default: {train_defaults.epochs}")
    train.add_argument("--batch-size", type=_positive_int, default=train_defaults.batch_size,
                       help=f"images per step; under torchrun the global batch, split over the processes (default: {train_defaults.batch_size})")
    train.add_argument("--crop", type=_positive_int, default=train_defaults.crop, help=f"training crop side in pixels (default: {train_defaults.crop})")
    train.add_argument("--lr", type=_positive_float, default=train_defaults.lr, help=f"peak AdamW learning rate (default: {train_defaults.lr})")
    train.add_argument("--weight-decay", type=_non_negative_float, default=train_defaults.weight_decay, help=f"AdamW weight decay (default: {train_defaults.weight_decay:g})")
    train.add_argument("--sky-weight", type=_non_negative_float, default=train_defaults.sky_weight, help="loss weight of sky pixels (L <= 15) relative to the galaxy")
    train.add_argument("--val-fraction", type=_fraction, default=train_defaults.val_fraction, help="share held out by a hash of the relative path (default: 0.15)")
    train.add_argument("--seed", type=int, default=train_defaults.seed, help=f"seed of the weights, crops and augmentation (default: {train_defaults.seed})")
    train.add_argument("--max-images", type=_positive_int, default=None, help="use a fixed subset of this many images (quick runs)")
    train.add_argument("--threads", type=_positive_int, default=None, help="CPU threads for PyTorch")
    train.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint, exactly")
    common(train, model=False)

    evaluate = commands.add_parser("evaluate", help="score models beside the gray and lut baselines")
    evaluate.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="folder of colour images (the truth)")
    evaluate.add_argument("--split", choices=("val", "train", "all"), default="val", help="which part of DATA_DIR (default: val, never trained on)")
    evaluate.add_argument("--val-fraction", type=_fraction, default=train_defaults.val_fraction,
                          help=f"share held out by a hash of the relative path; keep the training run's (default: {train_defaults.val_fraction:g})")
    evaluate.add_argument("--model", type=Path, action="append", default=None, help="checkpoint to score; repeat to compare several (default: the shipped model)")
    evaluate.add_argument("-o", "--out", type=Path, default=Path("galcolor-report"), metavar="REPORT_DIR", help="default: ./galcolor-report")
    evaluate.add_argument("--examples", type=_non_negative_int, default=6, help="images shown in examples.png (default: 6)")
    evaluate.add_argument("--max-images", type=_positive_int, default=None, help="take a fixed subset of this many images of DATA_DIR before the split, for quick runs (the val split gets about --val-fraction of them)")
    style(evaluate)
    common(evaluate, model=False)

    calibrate = commands.add_parser(
        "calibrate", help="fit a model's caution: how unlike its training survey an image may be before its colour fades",
        description="Fits a Gaussian to the model's bottleneck features over DATA_DIR's train split; colour is full within the spread "
        "of its val split and fades to grey by the distance of all but the nearest few of the --other images (other surveys, press images).",
    )
    calibrate.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="the folder the model was trained on")
    calibrate.add_argument("--other", type=Path, action="append", required=True, metavar="DIR", help="images unlike the training survey; repeat for several")
    calibrate.add_argument("-o", "--out", type=Path, required=True, help="the calibrated checkpoint to write (.safetensors)")
    calibrate.add_argument("--far-percentile", type=_fraction_percent, default=5.0,
                           help="colour is gone at this percentile of the other images' distances (default: 5)")
    calibrate.add_argument("--val-fraction", type=_fraction, default=train_defaults.val_fraction,
                           help=f"the training run's held-out share (default: {train_defaults.val_fraction:g})")
    calibrate.add_argument("--saturation", type=_share, default=None, metavar="F",
                           help="also store F as the saturation the model colours with by default (style auto); "
                                "scripts/style_tradeoff.py measures the choice (default: keep the model's)")
    common(calibrate)

    fit_uncertainty = commands.add_parser(
        "fit-uncertainty", help="give a regression model an uncertainty map: a small head that learns its expected colour error",
        description="Fits an error head on the frozen network's errors over DATA_DIR's train split, reports how well it ranks the "
        "actual errors on the val split (Spearman over signal pixels), and writes the model with the head; colorize --uncertainty then works.",
    )
    fit_uncertainty.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="the folder the model was trained on")
    fit_uncertainty.add_argument("-o", "--out", type=Path, required=True, help="the checkpoint to write (.safetensors)")
    fit_uncertainty.add_argument("--epochs", type=_positive_int, default=3, help="passes over the train split (default: 3)")
    fit_uncertainty.add_argument("--val-fraction", type=_fraction, default=train_defaults.val_fraction,
                                 help=f"the training run's held-out share, on which the head is measured (default: {train_defaults.val_fraction:g})")
    common(fit_uncertainty)

    serve = commands.add_parser("serve", help="run the local web app (needs: pip install 'galcolor[web]')")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only; there is no login)")
    serve.add_argument("--port", type=_positive_int, default=7860, help="default: 7860")
    serve.add_argument("--model", type=Path, default=None, help="a checkpoint offered beside the shipped model, chosen by default")
    serve.add_argument("--max-upload-mb", type=_positive_float, default=50.0, help="largest upload in MB (default: 50)")
    serve.add_argument("--max-concurrent", type=_positive_int, default=2, help="images coloured at once (default: 2)")
    serve.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="where the network runs (default: auto, CUDA when present)")
    serve.add_argument("-q", "--quiet", action="store_true", help="no start-up banner from the web server")
    serve.add_argument("--json", action="store_true", help='print {"url": ...} on stdout once the server listens')

    data = commands.add_parser("data", help="public galaxy data sets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    download = data_commands.add_parser("download", help="download a data set, checked against its pinned SHA-256")
    download.add_argument("name", choices=sorted(REGISTRY))
    download.add_argument("--dir", type=Path, default=None, help="folder (default: $GALCOLOR_DATA_DIR or ~/.cache/galcolor)")
    download.add_argument("--url", default=None, help="a mirror; the file is still checked against the pinned hash")
    download.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary, only errors")
    download.add_argument("--json", action="store_true", help="print where the data set lies, as JSON on stdout")

    bench = commands.add_parser("bench", help="measure throughput and peak memory beside a baseline run in the same process")
    bench.add_argument("what", choices=("train", "colorize", "tile", "onnx"), help="train: tuned step vs eager fp32; colorize: pipeline vs per-image loop; tile: a large image in tiles; "
                       "onnx: onnxruntime vs PyTorch on synthetic 256x256 images")
    bench.add_argument("--images", type=_positive_int, default=64, help="colorize, onnx: synthetic 256x256 JPEGs (default: 64)")
    bench.add_argument("--batch-size", type=_positive_int, default=None, help="train: default 64; colorize, onnx: default 16")
    bench.add_argument("--steps", type=_positive_int, default=10, help="train: timed steps (default: 10)")
    bench.add_argument("--size", type=_positive_int, default=4096, help="tile: image side (default: 4096)")
    bench.add_argument("--out-json", type=Path, default=None, metavar="F", help="also write the figures to this JSON file")
    common(bench)

    export = commands.add_parser(
        "export", help="export a model to ONNX for onnxruntime (needs: pip install 'galcolor[onnx]')",
        description="Write the network and its decode as one ONNX graph: normalised L (batch, 1, height, width) in, "
        "ab (batch, 2, height, width) out, every axis but the channels dynamic. Height and width must be multiples of the "
        "model's size_multiple (stored with the model config in the file's metadata); galcolor.export.OnnxColorizer pads for you. "
        "The graph is checked against PyTorch with onnxruntime before the file is written.",
    )
    export.add_argument("--onnx", type=Path, required=True, metavar="PATH", help="the .onnx file to write (replaced atomically)")
    export.add_argument("--model", type=Path, default=None, help="a galcolor .safetensors checkpoint (default: the shipped model)")
    export.add_argument("--opset", type=_positive_int, default=None, help="ONNX opset to target (default: the exporter's own choice; older opsets are converted down where possible)")
    export.add_argument("--temperature", type=_share, default=None,
                        help="annealed-mean temperature baked into a classification model's graph (default: the checkpoint's)")
    export.add_argument("-q", "--quiet", action="store_true", help="no summary, only errors")
    export.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", module="PIL")  # odd EXIF and the like: the file still decodes
    on_main_thread = threading.current_thread() is threading.main_thread()  # only there may signal handlers be set
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if on_main_thread else None
    try:
        return {"demo": _demo, "colorize": _colorize, "train": _train, "evaluate": _evaluate, "calibrate": _calibrate,
                "fit-uncertainty": _fit_uncertainty, "bench": _bench,
                "serve": _serve, "data": _data, "export": _export}[args.command](args)
    except GalcolorError as err:
        print(f"galcolor: error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as err:  # e.g. a run folder that is a file, a full disk: one line, no traceback
        where = f"{err.filename}: " if err.filename else ""
        print(f"galcolor: error: {where}{err.strerror or err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as err:
        terminated = isinstance(err, Terminated)
        print(f"galcolor: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _problems_only(text: str) -> None:
    """The log of a quiet run: files it skipped still go to stderr, as evaluate's do."""
    if text.startswith("skipped "):
        print(f"galcolor: {text}", file=sys.stderr)


def styled_as_asked(model, args):
    """The model with the colour style the user chose: a preset, then explicit --caution/--saturation."""
    return styled(model, args.style, args.caution, args.saturation)


def _say(args, text: str) -> None:
    if not args.quiet and not args.json:
        print(text)


def _model_name(path: Path | None) -> str:
    return "galcolor" if path is None else f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem


def _unique_name(base: str, taken: set[str]) -> str:
    """One name per method (a model called gray.safetensors, or one given twice): equal names would pool their scores."""
    name, copy = base, 1
    while name in taken:
        copy += 1
        name = f"{base}#{copy}"
    return name


def _demo(args) -> int:
    import numpy as np
    from skimage.data import hubble_deep_field

    from .api import load_model
    from .evaluate import format_table, methods_for, score_images, write_report
    from .io import write_png

    began = time.perf_counter()
    model = styled_as_asked(load_model(args.model, args.device), args)
    truth = hubble_deep_field()  # (872, 1000, 3) uint8, a real HST colour image
    name = _unique_name(_model_name(args.model), {"gray", "lut"})
    candidates = [(name, model)]
    if model.cautious:  # show what caution changed, beside it
        candidates.append((f"{name} --style sdss", model.with_style(0.0, 1.0)))
    scored = score_images([truth], [None], ["Hubble Deep Field"], methods_for(candidates), examples=1, progress=False)
    coloured = scored.examples[0][2][name]
    write_png(args.out / "hubble_deep_field.colorized.png", np.asarray(coloured))
    paths = write_report(scored, args.out, {"data": "skimage.data.hubble_deep_field()", "model": str(model.source)}, name)
    result = {"out": str(args.out), "seconds": round(time.perf_counter() - began, 2), "metrics": scored.summaries}
    if args.json:
        print(json.dumps(_json_safe(result), allow_nan=False))
    _say(args, format_table({k: v for k, v in scored.summaries.items()}))
    _say(args, f"\nwrote {args.out / 'hubble_deep_field.colorized.png'}, {paths['examples']} and {paths['markdown']} in {result['seconds']} s")
    return EXIT_OK


def _colorize(args) -> int:
    from .distributed import session

    with session(args.device):  # under torchrun: each rank colours its share, rank 0 reports for all
        return _colorize_share(args)


def _colorize_share(args) -> int:
    from . import distributed
    from .api import load_model
    from .io import atomic_write_text
    from .diversity import require_distribution, require_uncertainty, uncertainty_legend
    from .pipeline import Extras, colorize_files, in_job_order, outcomes_as_dicts, plan_jobs

    began = time.perf_counter()
    model = styled_as_asked(load_model(args.model, args.device), args)  # inside the session "cuda" is this rank's GPU
    if args.temperature is not None:
        model = model.with_temperature(args.temperature)
    extras = Extras(args.samples, args.uncertainty, args.seed, args.fits, args.sample_temperature)
    if args.samples:
        require_distribution(model)
    if args.uncertainty:
        require_uncertainty(model)
    # Planned once, by rank 0: with --skip-existing, a rank that planned after another had begun
    # writing would see other jobs, and shares of different lists miss or repeat files.
    jobs, outcomes = distributed.run_on_main(plan_jobs, args.inputs, args.out, args.overwrite, args.skip_existing, extras)
    coloured = distributed.gather(colorize_files(distributed.shard(jobs), model, batch_size=args.batch_size, max_pixels=args.max_pixels, compress_level=args.compress_level,
                                                 progress=not (args.quiet or args.json) and distributed.is_main(), extras=extras))
    if distributed.active():  # back from the ranks' interleaved shares to the planned order
        coloured = in_job_order(coloured, jobs)
    outcomes += coloured
    if not distributed.is_main():
        # Rank 0 alone reports, and its exit code counts every rank's files. A rank that exited 1
        # here would have torchrun stop rank 0 before it had printed and written the report.
        return EXIT_OK
    seconds = time.perf_counter() - began
    counts = {status: sum(o.status == status for o in outcomes) for status in ("coloured", "skipped", "failed")}
    summary = {**counts, "seconds": round(seconds, 2), "images_per_s": round(counts["coloured"] / seconds, 2) if seconds else None, "out": str(args.out)}
    if args.report:
        atomic_write_text(args.report, json.dumps({"summary": summary, "files": outcomes_as_dicts(outcomes)}, indent=2))
    if args.json:
        print(json.dumps({"summary": summary, "files": outcomes_as_dicts(outcomes)}))
    failures = [o for o in outcomes if o.status == "failed"]
    for outcome in failures:
        print(f"galcolor: {outcome.message}", file=sys.stderr)
    _say(args, f"coloured {counts['coloured']}, skipped {counts['skipped']}, failed {counts['failed']} "
         f"in {seconds:.1f} s ({summary['images_per_s']} images/s) -> {args.out}")
    if args.uncertainty and counts["coloured"]:
        _say(args, f"{uncertainty_legend(model)}; the .npy files hold the values")
    if not outcomes:
        print("galcolor: error: no image files found in the inputs", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if failures else EXIT_OK


def _train(args) -> int:
    from .config import ModelConfig, TrainConfig
    from .distributed import is_main
    from .train import train

    model_config = ModelConfig(arch=args.arch, base_width=args.width, depth=args.depth, head=args.head, input_lightness=args.lightness)
    train_config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, crop=args.crop, lr=args.lr, weight_decay=args.weight_decay,
        sky_weight=args.sky_weight, ab_loss=args.ab_loss, val_fraction=args.val_fraction, seed=args.seed, max_images=args.max_images,
        num_threads=args.threads, rebalance_mix=args.rebalance_mix, adversarial_weight=args.adversarial_weight, init_from=str(args.init_from.resolve()) if args.init_from else None,
        augment=args.augment, folder_weights=tuple(args.folder_weights) if args.folder_weights else None,
    )
    result = train(
        args.data_dir, args.out, model_config, train_config, resume=args.resume, device=args.device,
        progress=not (args.quiet or args.json), log=_problems_only if (args.quiet or args.json) else print,
    )
    if not is_main():  # under torchrun every rank returns the same result; rank 0 prints it
        return EXIT_OK
    if args.json:
        print(json.dumps(_json_safe({"run_dir": str(result.run_dir), "best": str(result.best_path), "best_epoch": result.best_epoch,
                                     "best_metrics": result.best_metrics}), allow_nan=False))
    _say(args, f"best epoch {result.best_epoch}: de00_fg {result.best_metrics['de00_fg']:.2f}, colour_r {result.best_metrics['colour_r']:.3f}"
         f"\ncheckpoints: {result.best_path} (best), {result.last_path} (last); log: {result.run_dir / 'log.csv'}")
    return EXIT_OK


def _evaluate(args) -> int:
    from .api import load_model
    from .data import load_split
    from .evaluate import SCIENCE_NAMES, format_table, methods_for, score_images, write_report

    if args.out.exists() and not args.out.is_dir():  # before the scoring, which takes minutes
        raise GalcolorError(f"{args.out}: is a file, not a folder; choose another -o for the report")
    model_paths = args.model or [None]
    models, taken = [], {"gray", "lut"}
    for path in model_paths:
        name = _unique_name(_model_name(path), taken)
        taken.add(name)
        models.append((name, styled_as_asked(load_model(path, args.device), args)))
    dataset = load_split(args.data_dir, args.split, args.val_fraction, args.max_images, progress=not (args.quiet or args.json),
                         report_dir=args.out)
    for line in dataset.skipped:
        print(f"galcolor: skipped {line}", file=sys.stderr)
    images = [image.permute(1, 2, 0).numpy() for image in dataset.images]
    scored = score_images(images, dataset.labels, [str(r) for r in dataset.relatives], methods_for(models),
                          examples=args.examples, progress=not (args.quiet or args.json))
    # Figures depend on the style as much as on the weights, and a model's default saturation is not visible on its name.
    context = {"data": str(args.data_dir), "split": args.split, "images": len(images),
               "models": {name: str(model.source) for name, model in models},
               "styles": {name: {"caution": model.caution_strength if model.caution is not None else None, "saturation": model.saturation}
                          for name, model in models}}
    paths = write_report(scored, args.out, context, models[0][0])
    if args.json:
        print(json.dumps(_json_safe({**context, "metrics": scored.summaries, "report": str(paths["json"])}), allow_nan=False))
    _say(args, format_table(scored.summaries))
    _say(args, "\n" + format_table(scored.summaries, SCIENCE_NAMES))
    _say(args, f"\n{len(images)} images; report: {paths['markdown']}")
    return EXIT_OK


def _model_to_extend(args):
    """The model that calibrate and fit-uncertainty write again with more in it."""
    from .api import load_model, shipped_model_path

    if args.out.suffix != ".safetensors":
        raise GalcolorError(f"{args.out}: the model must be written as a .safetensors file")
    source = args.model if args.model is not None else shipped_model_path()
    if args.out.resolve() == Path(source).resolve():  # inputs are never modified: the model read is one
        raise GalcolorError(f"{args.out}: would replace the model it extends; write to another file")
    return load_model(args.model, args.device)


def _calibrate(args) -> int:
    from .calibrate import calibrate, save_calibrated

    model = _model_to_extend(args)
    quiet = args.quiet or args.json
    caution = calibrate(model, args.data_dir, args.other, args.val_fraction, args.far_percentile, progress=not quiet,
                        log=(lambda text: None) if quiet else print)
    save_calibrated(model, caution, args.out, {"data": str(args.data_dir), "other": [str(d) for d in args.other],
                                               "far_percentile": args.far_percentile}, args.saturation)
    limits = [round(float(x), 3) for x in caution.limits]
    if args.json:
        print(json.dumps({"out": str(args.out), "full_colour_within": limits[0], "grey_beyond": limits[1]}))
    _say(args, f"caution: full colour within distance {limits[0]}, grey beyond {limits[1]} -> {args.out}")
    return EXIT_OK


def _fit_uncertainty(args) -> int:
    from .error_fit import fit_and_save

    model = _model_to_extend(args)
    quiet = args.quiet or args.json
    result = fit_and_save(model, args.data_dir, args.out, args.epochs, args.val_fraction, progress=not quiet,
                          log=(lambda text: None) if quiet else print)
    if args.json:
        print(json.dumps(result))
    _say(args, f"error head: Spearman {result['val_spearman']:.3f} between expected and actual error on "
               f"{result['val_images']} validation images -> {args.out}")
    return EXIT_OK


def _serve(args) -> int:
    from .web import serve

    def ready(url: str) -> None:
        if args.json:
            print(json.dumps({"url": url}), flush=True)

    serve(args.host, args.port, args.model, args.max_upload_mb, args.max_concurrent, device=args.device,
          quiet=args.quiet or args.json, on_ready=ready)
    return EXIT_OK


def _data(args) -> int:
    from .datasets import default_data_dir, download

    path = download(args.name, args.dir or default_data_dir(), url_override=args.url, progress=not (args.quiet or args.json))
    if args.json:
        print(json.dumps({"name": args.name, "path": str(path)}))
    _say(args, f"{path}\ntrain on it: galcolor train {path} --out RUN_DIR")
    return EXIT_OK


def _bench(args) -> int:
    from .api import load_model
    from .bench import bench_colorize, bench_tile, bench_train, device_description
    from .io import atomic_write_text

    if args.out_json is not None and args.out_json.is_dir():  # before the benchmark, which takes minutes
        raise GalcolorError(f"{args.out_json}: is a folder; give the JSON file to write")
    model = load_model(args.model, args.device)
    device = next(model.network.parameters()).device
    if args.what == "train":
        figures = bench_train(model.config, args.device, batch_size=args.batch_size or 64, steps=args.steps)
    elif args.what == "colorize":
        figures = bench_colorize(model, images=args.images, batch_size=args.batch_size or 16)
    elif args.what == "onnx":
        from .bench import bench_onnx

        figures = bench_onnx(model, images=args.images, batch_size=args.batch_size or 16)
    else:
        figures = bench_tile(model, size=args.size)
    result = {"bench": args.what, "device": device_description(device), "torch": torch_version(), "figures": figures}
    if args.out_json:
        atomic_write_text(args.out_json, json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result))
    _say(args, f"galcolor bench {args.what} on {result['device']}")
    for name, values in figures.items():
        if isinstance(values, dict):
            _say(args, f"  {name:22s} " + "  ".join(f"{k} {_human(k, v)}" for k, v in values.items() if v is not None))
        else:
            _say(args, f"  {name:22s} {values:.2f}" if isinstance(values, float) else f"  {name:22s} {values}")
    return EXIT_OK


def _export(args) -> int:
    from .api import load_model
    from .export import export_onnx

    began = time.perf_counter()
    model = load_model(args.model, "cpu")
    if args.temperature is not None:
        model = model.with_temperature(args.temperature)
    result = export_onnx(model, args.onnx, opset=args.opset)
    result["seconds"] = round(time.perf_counter() - began, 2)
    if args.json:
        print(json.dumps(result))
    _say(args, f"wrote {result['onnx']} ({result['bytes'] / 2**20:.1f} MiB, opset {result['opset']}, {result['head']} head, "
         f"height and width multiples of {result['size_multiple']}); onnxruntime vs PyTorch fp32: max |Δab| "
         f"{result['max_abs_ab_diff_vs_pytorch_fp32']:.2g} in {result['seconds']} s")
    return EXIT_OK


def torch_version() -> str:
    import torch

    return torch.__version__


def _human(key: str, value) -> str:
    if key.endswith("bytes"):
        return f"{value / 2**20:.0f} MiB"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _json_safe(value):
    """NaN/Inf -> null (json.dumps writes them as the non-JSON tokens NaN/Infinity otherwise)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:  # numpy scalars
        return _json_safe(value.item())
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
