"""The `galcolor` command line: every subcommand's arguments, and the checks on their values."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..color.style import MAX_SATURATION, MUTED_SATURATION, STYLES
from ..errors import GalcolorError
from ..inference.predict import TILE
from ..io.atomic import FOLDER_PNG_LEVEL
from ..io.composite import DEFAULT_Q, NOISE_FLOOR, REFERENCE_LEVEL, REFERENCE_PERCENTILE
from ..io.decode import DEFAULT_MAX_PIXELS, FITS_STRETCH_HELP
from ..models.checkpoint import AUTO_SURVEY
from ..models.config import TRAIN_WORKING_SCALE, ModelConfig
from ..models.device import DEVICE_CHOICES
from ..training.config import FREEZE_CHOICES, TrainConfig
from ..training.download import REGISTRY
from ..version import __version__
from .api import shipped_surveys
from .argument_types import (
    _common_arguments, _fraction, _fraction_inclusive, _non_negative_float, _non_negative_int, _png_level, _positive_float, _positive_int, _saturation, _share,
)


def _shipped_surveys_text() -> str:
    try:
        known = shipped_surveys()
    except GalcolorError:  # the help still shows; colouring with the missing model says what is wrong
        return "(the shipped model is missing)"
    return f"(the shipped model's: {', '.join(known)})" if known else "(the shipped model was trained on SDSS alone and knows none)"


def _style_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--style", choices=tuple(STYLES), default="auto",
                     help="colour style: auto (default) fades colour towards grey as an image looks less like the training survey, "
                          "at the model's default saturation (the shipped model's: one per survey it recognises, SDSS and DECaLS 80%%, Hubble 20%%); "
                          "sdss: the training survey's full colour everywhere; "
                          f"muted: auto at {MUTED_SATURATION * 100:.0f}%% saturation, for surveys that render colour about half as strongly (DECaLS, GAMA)")
    sub.add_argument("--caution", type=_non_negative_float, default=None, metavar="S",
                     help="how strongly colour fades on unfamiliar images: colour x confidence**S (default: the style's; 0 turns it off)")
    sub.add_argument("--saturation", type=_saturation, default=None, metavar="F",
                     help=f"multiply the colour by F, 0 to {MAX_SATURATION:g} (default: the style's; 1 is the training survey's strength)")
    sub.add_argument("--survey", default=AUTO_SURVEY, metavar="NAME",
                     help="colour as this survey renders galaxies, for a model trained on several (train --condition-on-survey): "
                          f"{AUTO_SURVEY} (default) as the survey it recognises in each image, or one of the model's own surveys "
                          + _shipped_surveys_text())


def _add_demo(commands) -> None:
    demo = commands.add_parser("demo", help="colour scikit-image's Hubble Deep Field from its L alone and score it")
    demo.add_argument("-o", "--out", type=Path, default=Path("galcolor-demo"), help="output folder (default: ./galcolor-demo)")
    demo.add_argument("--held-out", type=Path, nargs="*", default=None, metavar="DIR",
                      help="also colour a few galaxies of each DIR's held-out split (its survey: the folder's name); "
                           "default: the folders the model was trained on, where they exist here; none given: the Hubble Deep Field alone")
    _style_arguments(demo)
    _common_arguments(demo)


def _add_colorize(commands) -> None:
    colorize = commands.add_parser(
        "colorize",
        help="colour images or folders of images",
        description="Colour images from their lightness alone. JPEG, PNG (8/16-bit, grey, RGB, RGBA, palette), TIFF, BMP, GIF, WebP and FITS "
        "(also .fits.gz and fpack .fz) are read; a colour input is reduced to its L first. Each output is OUT_DIR/<relative path>.png at "
        "the input's own size; an OUT_DIR inside an input folder is not searched for inputs; symbolic links are followed, and each "
        "one skipped (a second route to an input, a loop, a broken link) is counted and named. " + FITS_STRETCH_HELP
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
                          help="also write <stem>.fits: the colour planes as a cube that reads as [0, 1] (8-bit levels, BSCALE 1/255), with a FITS "
                               "input's celestial WCS as its own keywords (positions checked to 0.01\"); a WCS with a SIP or PV (TPV) distortion, "
                               "which astropy reads in 2-D images only, comes with the planes as 2-D extensions RED, GREEN, BLUE instead. SIP keywords under "
                               "a CTYPE without -SIP are no part of the WCS (FITS standard) and are left out; notes like this are in --report")
    colorize.add_argument("--seed", type=int, default=0, help="seed of the --samples draws (default: 0)")
    colorize.add_argument("--sample-temperature", type=_positive_float, default=1.0, metavar="T",
                          help="draw --samples from the distribution sharpened by T: 1 (default) as trained, below 1 narrower and nearer the best guess")
    colorize.add_argument("--temperature", type=_share, default=None,
                          help="annealed-mean temperature of a classification model, above 0 and at most 1 (default: the one chosen on validation)")
    hints = colorize.add_mutually_exclusive_group()
    hints.add_argument("--galaxy-colour", default=None, metavar="A,B",
                       help="the galaxy's flux-weighted mean a*, b* (from a catalogue, say): every input's colour is shifted to it instead of "
                            "the galaxy-colour stage's estimate")
    hints.add_argument("--colour-from", type=Path, default=None, metavar="REF",
                       help="take the galaxy's mean colour from REF, a colour image of the same galaxy (any size or survey); or from a list "
                            "file (.csv or .txt) of INPUT,REFERENCE lines giving each input its own (inputs not in it use the stage's estimate)")
    colorize.add_argument("--report", type=Path, default=None, help="write every file's outcome to this JSON file (status, message, what decided the colour, and "
                          "notes: a FITS header astropy had to fix, a symbolic link skipped)")
    colorize.add_argument("--science", type=Path, default=None, metavar="REPORT.csv",
                          help="write what each image's colour says to this CSV, one row per input: integrated a*, b*, P(red galaxy), "
                               f"bulge-minus-disk b*, star-forming regions and their area (docs/science.md; images up to {TILE} px a side)")
    colorize.add_argument("--science-maps", action="store_true",
                          help="also write <stem>.starforming.png (white: candidate star-forming regions), and <stem>.starforming.fits "
                               "with the input's WCS for FITS input")
    colorize.add_argument("--compress-level", type=_png_level, default=FOLDER_PNG_LEVEL, metavar="0-9",
                          help=f"zlib level of the PNGs: the same pixels at every level, 9 smallest, 0 fastest (default: {FOLDER_PNG_LEVEL}; "
                               "Pillow's default 6 makes files about 8%% smaller and takes 3x longer)")
    _style_arguments(colorize)
    _common_arguments(colorize)


def _add_train(commands) -> None:
    model_defaults, train_defaults = ModelConfig(), TrainConfig()
    train = commands.add_parser("train", help="train a model on a folder of colour images")
    train.add_argument("data_dir", type=Path, nargs="+", metavar="DATA_DIR",
                       help="folder of colour images (searched recursively), or a Galaxy10-style .h5 file; several for several surveys")
    train.add_argument("--folder-weights", type=_non_negative_float, nargs="+", default=None, metavar="W",
                       help="with several DATA_DIRs: each one's share of a training epoch (default: equal shares)")
    train.add_argument("--surveys", nargs="+", default=None, metavar="NAME",
                       help="the survey each DATA_DIR holds, one name per folder (default: each folder's name); folders may share a name. "
                            "Validation reports every metric per survey")
    train.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run folder: checkpoints, config.json, log.csv")
    train.add_argument("--model", dest="arch", choices=("seed", "unet"), default=model_defaults.arch, help="architecture (default: unet)")
    train.add_argument("--width", type=_positive_int, default=model_defaults.base_width, help=f"U-Net base width (default: {model_defaults.base_width})")
    train.add_argument("--depth", type=_positive_int, default=model_defaults.depth, help=f"U-Net depth (default: {model_defaults.depth})")
    train.add_argument("--working-scale", type=int, choices=(1, 2, 4), default=TRAIN_WORKING_SCALE,
                       help="U-Net: predict ab at 1/N of the side and refine it along the full-resolution L (chroma is smooth): "
                            "2 (default) trains 3.9x faster than 1, the full resolution of models before this option, "
                            "at the same validation de00_fg on SDSS (docs/model-history.md)")
    train.add_argument("--global-pathway", action="store_true",
                       help="U-Net: the decoder also sees the whole image's bottleneck features, averaged with each position weighted by "
                            "its luminance (a whole-galaxy view that a training crop and a whole frame give alike)")
    train.add_argument("--condition-on-survey", action="store_true",
                       help="learn each survey's colour style (surveys: --surveys, else each DATA_DIR's name; at least two) and a recogniser "
                            "that picks the survey when colorize is given --survey auto")
    train.add_argument("--condition-on-galaxy-colour", action="store_true",
                       help="U-Net: the decoder is also told each galaxy's mean colour (in training the truth, made noisy by "
                            "--galaxy-colour-noise and withheld for --galaxy-colour-dropout of the images; in use the galaxy-colour "
                            "stage's estimate or the user's hint) and learns to lay it out")
    train.add_argument("--galaxy-colour-noise", type=_non_negative_float, default=train_defaults.galaxy_colour_noise, metavar="AB",
                       help=f"largest sigma of the noise on the told colour, ab units (default: {train_defaults.galaxy_colour_noise:g})")
    train.add_argument("--galaxy-colour-dropout", type=_fraction_inclusive, default=train_defaults.galaxy_colour_dropout, metavar="SHARE",
                       help=f"share of training images told no colour (default: {train_defaults.galaxy_colour_dropout:g})")
    train.add_argument("--untold-surveys", nargs="+", default=(), metavar="NAME",
                       help="with --condition-on-galaxy-colour: surveys never told a colour in training, as in use where the "
                            "galaxy-colour stage does not set their colour")
    train.add_argument("--freeze", choices=FREEZE_CHOICES, default=train_defaults.freeze,
                       help="with --init-from, what keeps its weights: encoder (and survey recogniser: a caution or galaxy-colour stage "
                            "fitted on them still holds), network (all but the galaxy-colour FiLM: told no colour, it colours as "
                            "before), or none (default)")
    train.add_argument("--survey-loss-weight", type=_non_negative_float, default=train_defaults.survey_loss_weight,
                       help=f"weight of the survey recogniser's cross-entropy (default: {train_defaults.survey_loss_weight:g})")
    train.add_argument("--head", choices=("regress", "classify"), default=model_defaults.head,
                       help="regress: ab by regression (see --ab-loss); classify: ab bins with class rebalancing (Zhang et al. 2016)")
    train.add_argument("--ab-loss", choices=("l1", "de00"), default=train_defaults.ab_loss,
                       help="regress: l1 (default) on ab, or de00, CIEDE2000 against the truth (the metric evaluate reports first)")
    train.add_argument("--contrast-weight", type=_non_negative_float, default=train_defaults.contrast_weight,
                       help="regress: weight of a layout loss beside --ab-loss: the colour's deviation from the galaxy's mean and its "
                            "local contrast against the truth's, rare large deviations rebalanced (default: 0, none)")
    train.add_argument("--contrast-rebalance-mix", type=_fraction_inclusive, default=train_defaults.contrast_rebalance_mix,
                       help="λ of that rebalancing: 0 weighs deviations by their inverse share, 1 alike (default: 0.5)")
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
    _common_arguments(train, model=False)


def _add_evaluate(commands) -> None:
    train_defaults = TrainConfig()
    evaluate = commands.add_parser("evaluate", help="score models beside the gray and lut baselines")
    evaluate.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="folder of colour images (the truth)")
    evaluate.add_argument("--split", choices=("val", "train", "all"), default="val", help="which part of DATA_DIR (default: val, never trained on)")
    evaluate.add_argument("--val-fraction", type=_fraction, default=train_defaults.val_fraction,
                          help=f"share held out by a hash of the relative path; keep the training run's (default: {train_defaults.val_fraction:g})")
    evaluate.add_argument("--model", type=Path, action="append", default=None, help="checkpoint to score; repeat to compare several (default: the shipped model)")
    evaluate.add_argument("-o", "--out", type=Path, default=Path("galcolor-report"), metavar="REPORT_DIR", help="default: ./galcolor-report")
    evaluate.add_argument("--examples", type=_non_negative_int, default=6, help="images shown in examples.png (default: 6)")
    evaluate.add_argument("--max-images", type=_positive_int, default=None, help="take a fixed subset of this many images of DATA_DIR before the split, for quick runs (the val split gets about --val-fraction of them)")
    evaluate.add_argument("--only", choices=("spirals", "non_spirals"), default=None,
                          help="score only the galaxies of this folder label (the split stays DATA_DIR's: never trained on)")
    _style_arguments(evaluate)
    _common_arguments(evaluate, model=False)


def _add_serve(commands) -> None:
    serve = commands.add_parser("serve", help="run the local web app (needs: pip install 'galcolor[web]')")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only; there is no login)")
    serve.add_argument("--port", type=_positive_int, default=7860, help="default: 7860")
    serve.add_argument("--model", type=Path, default=None, help="a checkpoint offered beside the shipped model, chosen by default")
    serve.add_argument("--max-upload-mb", type=_positive_float, default=50.0, help="largest upload in MB (default: 50)")
    serve.add_argument("--max-concurrent", type=_positive_int, default=2, help="images coloured at once (default: 2)")
    serve.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="where the network runs (default: auto, CUDA when present)")
    serve.add_argument("-q", "--quiet", action="store_true", help="no start-up banner from the web server")
    serve.add_argument("--json", action="store_true", help='print {"url": ...} on stdout once the server listens')


def _add_data(commands) -> None:
    data = commands.add_parser("data", help="public galaxy data sets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    download = data_commands.add_parser("download", help="download a data set, checked against its pinned SHA-256")
    download.add_argument("name", choices=sorted(REGISTRY))
    download.add_argument("--dir", type=Path, default=None, help="folder (default: $GALCOLOR_DATA_DIR or ~/.cache/galcolor)")
    download.add_argument("--url", default=None, help="a mirror; the file is still checked against the pinned hash")
    download.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary, only errors")
    download.add_argument("--json", action="store_true", help="print where the data set lies, as JSON on stdout")


def _add_bench(commands) -> None:
    bench = commands.add_parser("bench", help="measure throughput and peak memory beside a baseline run in the same process")
    bench.add_argument("what", choices=("train", "colorize", "tile", "onnx"), help="train: tuned step vs eager fp32, and the current default network vs working scale 2; colorize: pipeline vs per-image loop; tile: a large image in tiles; "
                       "onnx: onnxruntime vs PyTorch on synthetic 256x256 images")
    bench.add_argument("--images", type=_positive_int, default=64, help="colorize, onnx: synthetic 256x256 JPEGs (default: 64)")
    bench.add_argument("--batch-size", type=_positive_int, default=None, help="train: default 64; colorize, onnx: default 16")
    bench.add_argument("--steps", type=_positive_int, default=10, help="train: timed steps (default: 10)")
    bench.add_argument("--size", type=_positive_int, default=4096, help="tile: image side (default: 4096)")
    bench.add_argument("--out-json", type=Path, default=None, metavar="F", help="also write the figures to this JSON file")
    _common_arguments(bench)


def _add_export(commands) -> None:
    export = commands.add_parser(
        "export", help="export a model to ONNX for onnxruntime (needs: pip install 'galcolor[onnx]')",
        description="Write the network and its decode as one ONNX graph: normalised L (batch, 1, height, width) in, "
        "ab (batch, 2, height, width) out, every axis but the channels dynamic. Height and width must be multiples of the "
        "model's size_multiple (stored with the model config in the file's metadata); galcolor.inference.export.OnnxColorizer pads for you. "
        "The graph is checked against PyTorch with onnxruntime before the file is written.",
    )
    export.add_argument("--onnx", type=Path, required=True, metavar="PATH", help="the .onnx file to write (replaced atomically)")
    export.add_argument("--model", type=Path, default=None, help="a galcolor .safetensors checkpoint (default: the shipped model)")
    export.add_argument("--opset", type=_positive_int, default=None, help="ONNX opset to target (default: the exporter's own choice; older opsets are converted down where possible)")
    export.add_argument("--temperature", type=_share, default=None,
                        help="annealed-mean temperature baked into a classification model's graph (default: the checkpoint's)")
    export.add_argument("-q", "--quiet", action="store_true", help="no summary, only errors")
    export.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def _add_composite(commands) -> None:
    composite = commands.add_parser(
        "composite", help="make a colour image from band FITS images (Lupton et al. 2004's asinh stretch)",
        description="Builds an 8-bit colour PNG from 2 or more single-band FITS images of one pixel grid with astropy's make_lupton_rgb: "
        "a truth to compare colourings against, or a training image. Give the bands bluest first: with 3 bands the reddest goes to R, "
        "the middle to G, the bluest to B (g r i -> B G R); 2 bands: G is their mean; more than 3: three contiguous groups, any larger "
        "group at the red end, each channel its group's mean (g r i z y -> B=g, G=(r+i)/2, R=(z+y)/2). Each band's sky (a 3-sigma-clipped "
        "median) is subtracted and NaN/Inf pixels are set to it. The PNG is flipped so it appears as DS9 shows the frame (row 1 at the bottom).",
    )
    composite.add_argument("bands", nargs="+", type=Path, metavar="BAND", help="single-band FITS images (also .fits.gz, .fz), bluest first")
    composite.add_argument("-o", "--out", type=Path, required=True, metavar="OUT.png", help="the PNG to write (replaced atomically)")
    composite.add_argument("--stretch", type=_positive_float, default=None,
                           help=f"Lupton linear stretch in data units (default: per image, so that about {100 - REFERENCE_PERCENTILE:g}%% of the "
                                f"galaxy's pixels pass {REFERENCE_LEVEL * 100:.0f}%% of white, and at least {NOISE_FLOOR:g} sky sigmas); "
                                "give one to render several images alike")
    composite.add_argument("--q", type=_positive_float, default=DEFAULT_Q, dest="Q", help=f"asinh softening Q (default: {DEFAULT_Q:g})")
    composite.add_argument("--scales", type=_positive_float, nargs="+", default=None, metavar="S",
                           help="multiply each sky-subtracted band by S to balance its colour (one per band; default: 1)")
    composite.add_argument("-q", "--quiet", action="store_true", help="no summary, only errors")
    composite.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="galcolor", description="Colour grayscale galaxy images with deep convolutional networks.")
    parser.add_argument("--version", action="version", version=f"galcolor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from .fit_arguments import add_calibrate, add_fit_galaxy_colour, add_fit_science, add_fit_uncertainty

    for add in (_add_demo, _add_colorize, _add_train, _add_evaluate, add_calibrate, add_fit_uncertainty, add_fit_galaxy_colour, add_fit_science,
                _add_serve, _add_data, _add_bench, _add_export, _add_composite):
        add(commands)
    return parser
