"""The subcommands of `galcolor`: each turns parsed arguments into calls of the package's functions."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..color.style import styled
from ..errors import GalcolorError
from ..models.checkpoint import AUTO_SURVEY

from .fit_commands import _calibrate, _fit_galaxy_colour, _fit_science, _fit_uncertainty
from .reporting import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE, _json_safe, _say  # noqa: F401  (cli reads the codes)


def _problems_only(text: str) -> None:
    """The log of a quiet run: files it skipped still go to stderr, as evaluate's do."""
    if text.startswith("skipped "):
        print(f"galcolor: {text}", file=sys.stderr)


def styled_as_asked(model, args):
    """The model with the colour style the user chose: a preset, then explicit --caution/--saturation.
    A survey the user names is their decision: its colour is not faded unless they ask for caution."""
    caution = args.caution
    if caution is None and args.style == "auto" and args.survey != AUTO_SURVEY:
        caution = 0.0
    return styled(model, args.style, caution, args.saturation).with_survey(args.survey)


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
    from ..evaluation.evaluate import format_table
    from .api import load_model
    from .demo import run_demo

    began = time.perf_counter()
    model = styled_as_asked(load_model(args.model, args.device), args)
    name = _unique_name(_model_name(args.model), {"gray", "lut"})
    quiet = args.quiet or args.json
    shown = run_demo(model, name, args.out, args.held_out, log=_problems_only if quiet else print)
    result = {"out": str(args.out), "seconds": round(time.perf_counter() - began, 2), "metrics": shown["metrics"], "held_out": shown["held_out"],
              "held_out_from": shown["held_out_from"]}
    if args.json:
        print(json.dumps(_json_safe(result), allow_nan=False))
    _say(args, "Hubble Deep Field\n" + format_table(shown["metrics"]))
    for survey, summaries in shown["held_out"].items():
        _say(args, f"\nheld-out {survey} galaxies ({shown['held_out_from'][survey]})\n" + format_table(summaries))
    if not shown["held_out"] and args.held_out is None:
        looked_in = ", ".join(shown["looked_in"]) or "the model records none"
        _say(args, f"\nno held-out galaxies shown: its training folders are not here ({looked_in}); --held-out DIR names some")
    _say(args, f"\nwrote {args.out / 'hubble_deep_field.colorized.png'}, {shown['paths']['examples']} and {shown['paths']['markdown']} in {result['seconds']} s")
    return EXIT_OK


def _colorize(args) -> int:
    from ..training.distributed import session

    with session(args.device):  # under torchrun: each rank colours its share, rank 0 reports for all
        return _colorize_share(args)


def _colorize_share(args) -> int:
    from ..inference.diversity import require_distribution, require_uncertainty, uncertainty_legend
    from ..inference.pipeline import Extras, colorize_files, in_job_order, outcomes_as_dicts, plan_jobs
    from ..io.atomic import atomic_write_text
    from ..training import distributed
    from .api import load_model

    began = time.perf_counter()
    model = styled_as_asked(load_model(args.model, args.device), args)  # inside the session "cuda" is this rank's GPU
    if args.temperature is not None:
        model = model.with_temperature(args.temperature)
    extras = Extras(args.samples, args.uncertainty, args.seed, args.fits, args.sample_temperature,
                    science=args.science is not None, science_maps=args.science_maps)
    if args.science is not None and args.science.is_dir():
        raise GalcolorError(f"{args.science}: is a folder; --science names the CSV file to write")
    if args.samples:
        require_distribution(model)
    if args.uncertainty:
        require_uncertainty(model)
    # Planned once, by rank 0: with --skip-existing, a rank that planned after another had begun
    # writing would see other jobs, and shares of different lists miss or repeat files.
    jobs, outcomes = distributed.run_on_main(plan_jobs, args.inputs, args.out, args.overwrite, args.skip_existing, extras)
    from ..inference.hints import with_hints

    model, jobs = with_hints(model, jobs, args.galaxy_colour, args.colour_from)
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
    if args.science is not None:
        from ..inference.science_outputs import science_table

        atomic_write_text(args.science, science_table(outcomes))
    if args.json:
        print(json.dumps({"summary": summary, "files": outcomes_as_dicts(outcomes)}))
    failures = [o for o in outcomes if o.status == "failed"]
    for outcome in failures:
        print(f"galcolor: {outcome.message}", file=sys.stderr)
    if not (args.quiet or args.json):  # quiet, they are in --report and --json
        for note in (note for outcome in outcomes for note in outcome.notes):
            print(f"galcolor: note: {note}", file=sys.stderr)
    _say(args, f"coloured {counts['coloured']}, skipped {counts['skipped']}, failed {counts['failed']} "
         f"in {seconds:.1f} s ({summary['images_per_s']} images/s) -> {args.out}")
    if args.uncertainty and counts["coloured"]:
        _say(args, f"{uncertainty_legend(model)}; the .npy files hold the values")
    if not outcomes:
        print("galcolor: error: no image files found in the inputs", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if failures else EXIT_OK


def _train(args) -> int:
    from ..models.config import ModelConfig
    from ..training.config import TrainConfig
    from ..training.distributed import is_main
    from ..training.trainer import train

    model_config = ModelConfig(arch=args.arch, base_width=args.width, depth=args.depth, head=args.head, input_lightness=args.lightness,
                               working_scale=args.working_scale, global_pathway=args.global_pathway,
                               global_pooling="flux" if args.global_pathway else "mean",
                               galaxy_colour_conditioned=args.condition_on_galaxy_colour)
    train_config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, crop=args.crop, lr=args.lr, weight_decay=args.weight_decay,
        sky_weight=args.sky_weight, ab_loss=args.ab_loss, contrast_weight=args.contrast_weight, contrast_rebalance_mix=args.contrast_rebalance_mix, val_fraction=args.val_fraction, seed=args.seed, max_images=args.max_images,
        num_threads=args.threads, rebalance_mix=args.rebalance_mix, adversarial_weight=args.adversarial_weight, init_from=str(args.init_from.resolve()) if args.init_from else None,
        augment=args.augment, folder_weights=tuple(args.folder_weights) if args.folder_weights else None,
        survey_names=tuple(args.surveys) if args.surveys else None, condition_on_survey=args.condition_on_survey,
        survey_loss_weight=args.survey_loss_weight, galaxy_colour_noise=args.galaxy_colour_noise,
        galaxy_colour_dropout=args.galaxy_colour_dropout, freeze=args.freeze,
        untold_surveys=tuple(args.untold_surveys),
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
    from ..evaluation.evaluate import SCIENCE_NAMES, format_table, methods_for, science_rows, score_images, write_report
    from ..training.data import images_to_score, load_split
    from .api import load_model

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
    images, labels, relatives = images_to_score(dataset, args.only)
    if not images:
        raise GalcolorError(f"{args.data_dir}: no {args.only} in its {args.split} split (folders named spirals/ and non_spirals/ say which)")
    scored = score_images(images, labels, relatives, methods_for(models),
                          examples=args.examples, progress=not (args.quiet or args.json))
    # Figures depend on the style as much as on the weights, and a model's default saturation is not visible on its name.
    context = {"data": str(args.data_dir), "split": args.split, "only": args.only, "images": len(images),
               "models": {name: str(model.source) for name, model in models},
               "styles": {name: {"caution": model.caution_strength if model.caution is not None else None, "saturation": model.saturation}
                          for name, model in models}}
    paths = write_report(scored, args.out, context, models[0][0])
    if args.json:
        print(json.dumps(_json_safe({**context, "metrics": scored.summaries, "report": str(paths["json"])}), allow_nan=False))
    _say(args, format_table(scored.summaries))
    _say(args, "\n" + format_table(science_rows(scored), SCIENCE_NAMES))
    _say(args, f"\n{len(images)} images; report: {paths['markdown']}")
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
    from ..training.download import default_data_dir, download

    path = download(args.name, args.dir or default_data_dir(), url_override=args.url, progress=not (args.quiet or args.json))
    if args.json:
        print(json.dumps({"name": args.name, "path": str(path)}))
    _say(args, f"{path}\ntrain on it: galcolor train {path} --out RUN_DIR")
    return EXIT_OK


def _bench(args) -> int:
    from ..io.atomic import atomic_write_text
    from .api import load_model
    from .bench import bench_colorize, bench_tile, bench_train, device_description

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
    from ..inference.export import export_onnx
    from .api import load_model

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


def _composite(args) -> int:
    from ..io.composite import band_channels, write_composite

    rgb = write_composite(args.bands, args.out, stretch=args.stretch, Q=args.Q, scales=args.scales)
    names = [Path(band).name for band in args.bands]
    channels = {colour: [names[i] for i in indices] for colour, indices in zip("RGB", band_channels(len(names)))}
    if args.json:
        print(json.dumps({"out": str(args.out), "width": rgb.shape[1], "height": rgb.shape[0], "channels": channels}))
    _say(args, f"wrote {args.out} ({rgb.shape[1]}x{rgb.shape[0]}): " + ", ".join(f"{c}={'+'.join(n)}" for c, n in channels.items()))
    return EXIT_OK



COMMANDS = {"demo": _demo, "colorize": _colorize, "train": _train, "evaluate": _evaluate, "calibrate": _calibrate,
            "fit-uncertainty": _fit_uncertainty, "fit-galaxy-colour": _fit_galaxy_colour, "fit-science": _fit_science, "bench": _bench, "serve": _serve, "data": _data, "export": _export,
            "composite": _composite}
