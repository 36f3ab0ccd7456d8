"""The subcommands that add a part to a trained model and write it again: calibrate (its caution),
fit-uncertainty (its error head), fit-galaxy-colour (its galaxy-colour stage), fit-science (what its
colour says)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import GalcolorError
from .reporting import EXIT_OK, _json_safe, _say


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
    from ..training.calibrate import calibrate, save_calibrated

    model = _model_to_extend(args)
    quiet = args.quiet or args.json
    if args.surveys is not None and len(args.surveys) != len(args.data_dirs):
        raise GalcolorError(f"{len(args.surveys)} survey names for {len(args.data_dirs)} data folders: give one name per folder")
    caution = calibrate(model, args.data_dirs, args.other, args.val_fraction, args.far_percentile, progress=not quiet,
                        log=(lambda text: None) if quiet else print, survey_names=args.surveys)
    save_calibrated(model, caution, args.out, {"data": [str(d) for d in args.data_dirs], "other": [str(d) for d in args.other],
                                               "far_percentile": args.far_percentile, "surveys": args.surveys}, args.saturation)
    limits = caution.limits.view(-1, 2).tolist()
    names = list(model.config.surveys) if args.surveys is not None else ["all"]
    if args.json:
        print(json.dumps({"out": str(args.out), "limits": {name: {"full_colour_within": round(near, 3), "grey_beyond": round(far, 3)}
                                                          for name, (near, far) in zip(names, limits)}}))
    for name, (near, far) in zip(names, limits):
        _say(args, f"caution{'' if name == 'all' else ' for ' + name}: full colour within distance {near:.3f}, grey beyond {far:.3f}")
    _say(args, f"-> {args.out}")
    return EXIT_OK


def _fit_uncertainty(args) -> int:
    from ..training.error_fit import fit_and_save

    model = _model_to_extend(args)
    quiet = args.quiet or args.json
    result = fit_and_save(model, args.data_dirs, args.out, args.epochs, args.val_fraction, progress=not quiet,
                          log=(lambda text: None) if quiet else print)
    if args.json:
        print(json.dumps(result))
    _say(args, f"error head: Spearman {result['val_spearman']:.3f} between expected and actual error on "
               f"{result['val_images']} validation images -> {args.out}")
    return EXIT_OK


def _fit_galaxy_colour(args) -> int:
    from ..training.galaxy_colour_fit import fit_and_save

    model = _model_to_extend(args)
    quiet = args.quiet or args.json
    result = fit_and_save(model, args.data_dirs, args.out, args.surveys, args.steps, args.val_fraction, args.input == "canonical", progress=not quiet,
                          log=(lambda text: None) if quiet else print)
    if args.json:
        print(json.dumps(_json_safe(result), allow_nan=False))
    for survey, row in result["val"].items():
        _say(args, f"{survey}: {row['images']} held-out galaxies, r(a*) {row['stage_r_a']:.3f} (lut {row['lut_r_a']:.3f}), "
                   f"r(b*) {row['stage_r_b']:.3f} (lut {row['lut_r_b']:.3f}), mean error {row['stage_error']:.2f} ab "
                   f"(lut {row['lut_error']:.2f}, the colour network's own {row['network_error']:.2f}): "
                   + ("sets its galaxies' colour" if row["trusted"] else "the colour network's own colour is kept"))
    _say(args, f"galaxy colour: {result['train_images']} training galaxies, {result['seconds']:.0f} s -> {args.out}")
    return EXIT_OK


def _fit_science(args) -> int:
    from ..training.science_fit import fit_and_save

    model = _model_to_extend(args)
    quiet = args.quiet or args.json
    result = fit_and_save(model, args.data_dirs, args.out, args.surveys, args.val_fraction, progress=not quiet,
                          log=(lambda text: None) if quiet else print)
    if args.json:
        print(json.dumps(_json_safe(result), allow_nan=False))
    for survey, row in result["surveys"].items():
        _say(args, f"{survey}: {row['galaxies']} held-out galaxies, red above true b* {row['red_threshold_b']:.2f} ({row['red']} red), "
                   f"red/blue AUC {row['auc']:.3f}" + (f", Brier {row['brier_cross_fit']:.3f} (base rate's {row['brier_constant']:.3f})"
                                                       if "brier_cross_fit" in row else f"; {row['note']}"))
    sf = result["starforming"]
    _say(args, f"star-forming regions: blue excess {result['starforming_excess']:g} finds {sf['sf_recall']:.3f} of the truth's "
               f"{sf['true_regions']} at precision {sf['sf_precision']:.3f} -> {args.out}")
    return EXIT_OK
