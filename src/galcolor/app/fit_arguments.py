"""The arguments of the commands that add a part to a trained model: its caution, its error head, its
galaxy-colour stage and its science calibration."""

from __future__ import annotations

from pathlib import Path

from ..training.config import TrainConfig
from .argument_types import _common_arguments, _fraction, _fraction_percent, _positive_int, _share


def add_calibrate(commands) -> None:
    train_defaults = TrainConfig()
    calibrate = commands.add_parser(
        "calibrate", help="fit a model's caution: how unlike its training survey an image may be before its colour fades",
        description="Fits a Gaussian to the model's bottleneck features over the DATA_DIRs' train split; colour is full within the spread "
        "of their val split and fades to grey by the distance of all but the nearest few of the --other images (other surveys, press images).",
    )
    calibrate.add_argument("data_dirs", type=Path, nargs="+", metavar="DATA_DIR", help="the folders the model was trained on (each survey's)")
    calibrate.add_argument("--other", type=Path, action="append", required=True, metavar="DIR", help="images unlike the training survey; repeat for several")
    calibrate.add_argument("-o", "--out", type=Path, required=True, help="the calibrated checkpoint to write (.safetensors)")
    calibrate.add_argument("--surveys", nargs="+", default=None, metavar="NAME",
                           help="the survey of each DATA_DIR (a model of several surveys): one caution per survey, each image scored "
                                "against the survey it looks like (default: one caution over all the images)")
    calibrate.add_argument("--far-percentile", type=_fraction_percent, default=5.0,
                           help="colour is gone at this percentile of the other images' distances (default: 5)")
    calibrate.add_argument("--val-fraction", type=_fraction, default=train_defaults.val_fraction,
                           help=f"the training run's held-out share (default: {train_defaults.val_fraction:g})")
    calibrate.add_argument("--saturation", type=_share, default=None, metavar="F",
                           help="also store F as the saturation the model colours with by default (style auto); "
                                "scripts/style_tradeoff.py measures the choice (default: keep the model's)")
    _common_arguments(calibrate)


def _model_part_arguments(fit, held_out_use: str, surveys: bool = True) -> None:
    """What every command that fits a part of a model takes: the training folders, where to write it,
    each folder's survey and the held-out share."""
    fit.add_argument("data_dirs", type=Path, nargs="+", metavar="DATA_DIR", help="the folders the model was trained on (each survey's)")
    fit.add_argument("-o", "--out", type=Path, required=True, help="the checkpoint to write (.safetensors)")
    if surveys:
        fit.add_argument("--surveys", nargs="+", default=None, metavar="NAME",
                         help="the survey of each DATA_DIR, one of the model's (default: each folder's name)")
    default = TrainConfig().val_fraction
    fit.add_argument("--val-fraction", type=_fraction, default=default, help=f"the training run's held-out share, {held_out_use} (default: {default:g})")


def add_fit_uncertainty(commands) -> None:
    fit_uncertainty = commands.add_parser(
        "fit-uncertainty", help="give a regression model an uncertainty map: a small head that learns its expected colour error",
        description="Fits an error head on the frozen network's errors over the DATA_DIRs' train split, reports how well it ranks the "
        "actual errors on the val split (Spearman over signal pixels), and writes the model with the head; colorize --uncertainty then works.",
    )
    _model_part_arguments(fit_uncertainty, "on which the head is measured", surveys=False)
    fit_uncertainty.add_argument("--epochs", type=_positive_int, default=3, help="passes over the train split (default: 3)")
    _common_arguments(fit_uncertainty)


def add_fit_galaxy_colour(commands) -> None:
    fit = commands.add_parser(
        "fit-galaxy-colour", help="give a model its galaxy-colour stage: a small network that reads each galaxy's overall colour from a thumbnail",
        description="Trains a small network on a 64x64 thumbnail of every galaxy of the DATA_DIRs' train split to predict its flux-weighted "
        "mean (a*, b*) for each survey the model knows, scores it on their val split beside the lut baseline (r(a*), r(b*), mean error "
        "per survey), and writes the model with it: colorize then shifts each galaxy's colour to the stage's estimate.",
    )
    _model_part_arguments(fit, "on which the stage is scored")
    fit.add_argument("--steps", type=_positive_int, default=12_000, help="training steps of 32 thumbnails (default: 12000)")
    fit.add_argument("--input", choices=("own", "canonical"), default="own",
                     help="what the stage reads: each image's own L (default; measured better) or the canonical, stretch-free L the colour network sees")
    _common_arguments(fit)


def add_fit_science(commands) -> None:
    fit = commands.add_parser(
        "fit-science", help="calibrate what a model's colour says: P(red galaxy) and where its colour marks star-forming regions",
        description="For each survey: splits red from blue galaxies at Otsu's threshold of the DATA_DIRs' train-split true integrated b*, "
        "fits a logistic of the model's integrated b* for P(red) on their val split (AUC and a cross-fitted Brier score reported), and "
        "chooses the blue excess at which the model's colour marks a star-forming region (best F1 against the truth's regions); "
        "writes the model with them: colorize --science then reports them.",
    )
    _model_part_arguments(fit, "on which it is fitted")
    _common_arguments(fit)
