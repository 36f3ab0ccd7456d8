"""`galcolor bench`: throughput and peak memory of training and colourization, each beside a
baseline run in the same process (figures for docs/performance.md, never assertions in tests)."""

from __future__ import annotations

import platform
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..color.lab import normalise_ab, normalise_lightness, rgb_to_lab
from ..models import build_model, count_parameters
from ..models.checkpoint import LoadedModel
from ..models.config import TRAIN_WORKING_SCALE, ModelConfig
from ..models.device import autocast, bf16_autocast_pays, full_precision, resolve_device

# Dense bf16 tensor-core peaks (FLOP/s) for MFU; CPUs have no such single figure, so no MFU there.
DENSE_BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}


def _proc_status_bytes(field: str) -> int | None:
    """A memory figure of this process from Linux's /proc/self/status ("VmHWM", "VmRSS"); None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """This process's peak resident memory since the last reset_peak_rss() (Linux VmHWM)."""
    peak = _proc_status_bytes("VmHWM")
    if peak is not None:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes() -> int | None:
    return _proc_status_bytes("VmRSS")


def reset_peak_rss() -> None:
    import gc

    gc.collect()
    try:  # memory freed by the previous configuration but still held by malloc would count as this one's
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the figures may then include some of the previous configuration's memory
    try:  # writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def _timed(run: Callable[[], int], device: torch.device) -> tuple[float, int]:
    """Seconds taken and the count `run` reports, with device work finished inside the clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    began = time.perf_counter()
    count = run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - began, count


def train_step_flops(network: torch.nn.Module, batch: torch.Tensor) -> float:
    """FLOPs of one forward + backward, counted by PyTorch's own FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        network(batch).float().abs().mean().backward()
    network.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


# What `bench train` compares in one run: the network `galcolor train` built before working scales
# (the shipped one's), and the one it builds now (chroma at half the side). Spelt out, not
# ModelConfig(), so that a change of defaults cannot make them equal.
PREVIOUS_DEFAULT = ModelConfig(arch="unet", base_width=16, depth=4, working_scale=1)
NEW_DEFAULT = ModelConfig(arch="unet", base_width=16, depth=4, working_scale=TRAIN_WORKING_SCALE)


def _train_step(config: ModelConfig, device: torch.device, lab: torch.Tensor, tuned: bool) -> tuple[torch.nn.Module, torch.Tensor, Callable[[], int]]:
    """A fresh network of `config`, its input, and one optimiser step on the whole batch of `lab`:
    tuned (channels_last, bf16 autocast where it pays, fused AdamW on CUDA) or eager fp32 contiguous."""
    network = build_model(config).to(device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, fused=tuned and device.type == "cuda")
    x = normalise_lightness(lab[:, :1])
    if tuned:
        network = network.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    target = normalise_ab(lab[:, 1:])

    def step() -> int:
        with autocast(device, enabled=tuned):
            pred = network(x)
        loss = (pred.float() - target).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(x)

    return network, x, step


def bench_train(config: ModelConfig, device_name: str = "auto", batch_size: int = 64, crop: int = 128, steps: int = 10) -> dict:
    """The tuned step (channels_last, bf16 autocast where it pays, fused AdamW on CUDA) against an
    eager fp32 contiguous step of the same model and batch; then, on the same batch, the tuned step of
    the previous default network against the new one (compare_defaults)."""
    device = resolve_device(device_name)
    torch.manual_seed(0)
    rgb = torch.rand(batch_size, 3, crop, crop, device=device)
    lab = rgb_to_lab(rgb)
    results = {}
    for name, tuned in (("baseline_eager_fp32", False), ("tuned", True)):
        network, x, step = _train_step(config, device, lab, tuned)
        _timed(step, device)  # warm-up: kernels chosen, memory allocated
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds, images = _timed(lambda: sum(step() for _ in range(steps)), device)
        flops = train_step_flops(network, x) / batch_size
        results[name] = {
            "images_per_s": images / seconds,
            "model_tflop_per_s": flops * images / seconds / 1e12,
            "gpu_peak_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        }
        peak = next((v for k, v in DENSE_BF16_PEAK.items() if k in device_description(device)), None)
        results[name]["mfu"] = results[name]["model_tflop_per_s"] * 1e12 / peak if peak else None
    results["speedup"] = results["tuned"]["images_per_s"] / results["baseline_eager_fp32"]["images_per_s"]
    results["bf16_autocast"] = bf16_autocast_pays(device)
    results.update(compare_defaults(device, lab, steps))
    return results


def compare_defaults(device: torch.device, lab: torch.Tensor, steps: int = 10, rounds: int = 2,
                     previous: ModelConfig = PREVIOUS_DEFAULT, new: ModelConfig = NEW_DEFAULT) -> dict:
    """Training images/s of the `previous` and `new` networks, tuned step, on the same batch `lab`
    (B, 3, H, W): `rounds` alternating rounds of about steps / rounds steps each after a warm-up
    step, each keeping its fastest round, so a burst of other work on a shared machine slows one
    round of both rather than all of one."""
    per_round = max(1, -(-steps // rounds))
    runs = {name: _train_step(config, device, lab, tuned=True) for name, config in (("previous_default", previous), ("new_default", new))}
    for _, _, step in runs.values():
        _timed(step, device)  # warm-up: kernels chosen, memory allocated
    fastest = {name: 0.0 for name in runs}
    for _ in range(rounds):
        for name, (_, _, step) in runs.items():
            seconds, images = _timed(lambda: sum(step() for _ in range(per_round)), device)
            fastest[name] = max(fastest[name], images / seconds)
    results: dict = {}
    for (name, (network, x, _)), config in zip(runs.items(), (previous, new)):
        results[name] = {"network": config.network_label, "images_per_s": fastest[name], "parameters": count_parameters(network),
                         "gflop_per_image": train_step_flops(network, x) / len(x) / 1e9}
    results["new_vs_previous"] = results["new_default"]["images_per_s"] / results["previous_default"]["images_per_s"]
    results["default_comparison"] = {"batch_size": len(lab), "crop": int(lab.shape[-1]), "rounds": rounds, "steps_per_round": per_round,
                                     "step": "tuned"}
    return results


def synthetic_galaxies(folder: Path, count: int, size: int, seed: int = 0) -> list[Path]:
    """Colour JPEGs of smooth elliptical 'galaxies' on black sky, to benchmark without data."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size - 0.5
    paths = []
    for index in range(count):
        angle, ratio = rng.uniform(0, np.pi), rng.uniform(0.3, 1.0)
        u = x * np.cos(angle) + y * np.sin(angle)
        v = (-x * np.sin(angle) + y * np.cos(angle)) / ratio
        profile = np.exp(-np.hypot(u, v) / rng.uniform(0.04, 0.12))
        tint = rng.uniform(0.6, 1.0, size=3)
        pixels = np.clip(profile[..., None] * tint * 255 + rng.normal(0, 3, (size, size, 3)), 0, 255)
        path = folder / f"galaxy-{index:05d}.jpg"
        Image.fromarray(pixels.astype(np.uint8)).save(path, quality=92)
        paths.append(path)
    return paths


def bench_colorize(model: LoadedModel, images: int = 64, size: int = 256, batch_size: int = 16, workers: int | None = None,
                   rounds: int = 3) -> dict:
    """The folder pipeline against the loop a user of the Python API would write: open, colorize,
    save with Pillow, one file after another. Both write the same pixels; the pipeline also makes
    each output atomic and durable (temporary file, fsync, rename), which the loop skips. Each
    speed is the best of `rounds` alternating rounds after a warm-up round, so a burst of other
    work on a shared machine slows one round of each rather than all of one."""
    from PIL import Image

    from ..inference.pipeline import Job, colorize_files
    from .api import colorize

    device = next(model.network.parameters()).device
    with tempfile.TemporaryDirectory() as tmp:
        sources = synthetic_galaxies(Path(tmp), images, size)
        out = Path(tmp) / "out"
        (out / "loop").mkdir(parents=True)

        def per_image_loop() -> int:
            for source in sources:
                with Image.open(source) as image:
                    coloured = colorize(image, model)
                Image.fromarray(coloured).save(out / "loop" / f"{source.stem}.png")
            return len(sources)

        def pipeline() -> int:
            jobs = [Job(s, out / "pipe" / f"{s.stem}.png") for s in sources]
            outcomes = colorize_files(jobs, model, batch_size=batch_size, workers=workers, progress=False)
            return sum(o.status == "coloured" for o in outcomes)

        results: dict = {}
        for round_index in range(rounds + 1):  # round 0 is the warm-up: kernels chosen, memory allocated
            for name, run in (("baseline_per_image", per_image_loop), ("pipeline", pipeline)):
                reset_peak_rss()
                seconds, done = _timed(run, device)
                if round_index and done / seconds > results.get(name, {}).get("images_per_s", 0.0):
                    results[name] = {"images_per_s": done / seconds, "megapixels_per_s": done * size * size / seconds / 1e6,
                                     "peak_rss_bytes": peak_rss_bytes()}
        results["largest_pixel_difference"] = max(
            int(np.abs(np.asarray(Image.open(out / "loop" / f"{s.stem}.png"), dtype=np.int16)
                       - np.asarray(Image.open(out / "pipe" / f"{s.stem}.png"), dtype=np.int16)).max())
            for s in sources
        )
        loop_bytes = sum((out / "loop" / f"{s.stem}.png").stat().st_size for s in sources)
        results["png_bytes_vs_baseline"] = sum((out / "pipe" / f"{s.stem}.png").stat().st_size for s in sources) / loop_bytes
    results["speedup"] = results["pipeline"]["images_per_s"] / results["baseline_per_image"]["images_per_s"]
    results["threads"] = torch.get_num_threads()
    results["rounds"] = rounds
    return results


def large_galaxy(path: Path, size: int, seed: int = 0) -> Path:
    """A size x size colour JPEG: a large smooth galaxy and a few small ones on noisy black sky,
    drawn a band of rows at a time so that making it costs little memory."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    blobs = [(0.5, 0.5, 0.12, 0.5, (1.0, 0.85, 0.7))] + [
        (rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95), rng.uniform(0.005, 0.03), rng.uniform(0.3, 1.0), rng.uniform(0.6, 1.0, 3))
        for _ in range(24)
    ]
    pixels = np.empty((size, size, 3), np.uint8)
    x = np.arange(size) / size
    for top in range(0, size, 256):
        y = (np.arange(top, min(top + 256, size)) / size)[:, None]
        light = np.zeros((len(y), size, 3))
        for cy, cx, scale, ratio, tint in blobs:
            light += np.exp(-np.hypot(x - cx, (y - cy) / ratio) / scale)[..., None] * np.asarray(tint)
        light = light * 255 + rng.normal(0, 3, light.shape)
        pixels[top : top + len(y)] = np.clip(light, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=92)
    return path


IN_MEMORY_SIDE = 4096  # the in-memory path needs about 180 bytes a pixel: 3 GiB here, 12 GiB at 8192


def bench_tile(model: LoadedModel, size: int = 4096) -> dict:
    """One large image file coloured the way `galcolor colorize` does it (streamed: read, coloured
    and written band by band of rows), against the Python API's in-memory path for a file (decoded
    whole as float32, coloured in tiles, converted and saved whole; at most IN_MEMORY_SIDE a side),
    and a whole-image pass without tiles at 2048 at most. Where both files have one size, their
    largest pixel difference too."""
    from PIL import Image

    from ..color.lab import lab_array_to_rgb8
    from ..inference.arrays import colorize_lab
    from ..inference.pipeline import Job, colorize_files
    from ..inference.predict import predict_ab
    from ..io.atomic import write_png
    from ..io.decode import read_image

    device = next(model.network.parameters()).device
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = large_galaxy(Path(tmp) / "large.jpg", size)
        in_memory_side = min(size, IN_MEMORY_SIDE)
        in_memory_source = source if in_memory_side == size else large_galaxy(Path(tmp) / "in-memory.jpg", in_memory_side)
        streamed, in_memory = Path(tmp) / "streamed.png", Path(tmp) / "in_memory.png"

        def stream() -> int:
            (outcome,) = colorize_files([Job(source, streamed)], model, progress=False)
            if outcome.status != "coloured":
                raise RuntimeError(outcome.message)
            return 1

        def whole() -> int:
            predicted, _ = colorize_lab(read_image(in_memory_source).rgb, model)
            write_png(in_memory, lab_array_to_rgb8(predicted))
            return 1

        for name, run, side in (("streamed_file", stream, size), ("in_memory_file", whole, in_memory_side)):
            reset_peak_rss()
            rss_before = current_rss_bytes()
            seconds, _ = _timed(run, device)
            results[name] = {"side": side, "megapixels_per_s": side * side / seconds / 1e6, "seconds": seconds,
                             "peak_rss_bytes": peak_rss_bytes(), "rss_before_bytes": rss_before}
        if in_memory_side == size:
            difference = 0
            with Image.open(streamed) as a, Image.open(in_memory) as b:
                for top in range(0, size, 1024):  # band by band: two whole decoded PNGs would dwarf the figures above
                    box = (0, top, size, min(top + 1024, size))
                    difference = max(difference, int(np.abs(np.asarray(a.crop(box), dtype=np.int16) - np.asarray(b.crop(box), dtype=np.int16)).max()))
            results["largest_pixel_difference"] = difference
    whole_size = min(size, 2048)
    lightness = torch.rand(1, 1, whole_size, whole_size) * 60
    reset_peak_rss()
    seconds, _ = _timed(lambda: (predict_ab(model, lightness), 1)[1], device)
    results["baseline_whole_L_in_memory"] = {"side": whole_size, "megapixels_per_s": whole_size**2 / seconds / 1e6,
                                             "peak_rss_bytes": peak_rss_bytes()}
    results["threads"] = torch.get_num_threads()
    return results


def bench_onnx(model: LoadedModel, images: int = 64, size: int = 256, batch_size: int = 16, rounds: int = 3) -> dict:
    """onnxruntime (CPU, fp32) against PyTorch's predict_ab on the same synthetic galaxies, with the
    largest ab difference from PyTorch fp32 (the parity the export promises, within 0.5 ab) and from
    PyTorch's default path (bf16 autocast where the hardware has bf16 units). Speeds are the best
    of `rounds` alternating rounds."""
    from ..inference.export import PARITY_LIMIT_AB, OnnxColorizer, export_onnx
    from ..inference.predict import predict_ab
    from ..io.decode import read_image

    device = next(model.network.parameters()).device
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        sources = synthetic_galaxies(Path(tmp), images, size)
        rgb = torch.from_numpy(np.stack([read_image(s).rgb for s in sources])).permute(0, 3, 1, 2)
        with torch.inference_mode():
            lightness = rgb_to_lab(rgb)[:, :1].contiguous()
        began = time.perf_counter()
        export_onnx(model, Path(tmp) / "model.onnx")
        export_seconds = time.perf_counter() - began
        runner = OnnxColorizer(Path(tmp) / "model.onnx", threads=threads)  # the same thread count as PyTorch
    batches = list(torch.split(lightness, batch_size))

    def collecting(predict: Callable[[torch.Tensor], np.ndarray], outputs: list) -> Callable[[], int]:
        """A timed run of `predict` over every batch, keeping its ab in `outputs` for the parity figures."""
        def run() -> int:
            outputs.clear()
            outputs.extend(predict(batch) for batch in batches)
            return len(lightness)
        return run

    def pytorch(batch: torch.Tensor) -> np.ndarray:
        return predict_ab(model, batch).cpu().numpy()

    default_ab, fp32_ab, onnx_ab = [], [], []
    default_precision = "bf16 autocast" if bf16_autocast_pays(device) else "fp32"
    configurations = (
        ("pytorch_default", collecting(pytorch, default_ab), False),
        ("pytorch_fp32", collecting(pytorch, fp32_ab), True),
        ("onnxruntime_cpu_fp32", collecting(runner.predict_ab, onnx_ab), False),
    )
    # Rounds alternate the three, and each keeps its fastest round: on a shared machine a burst
    # of other work then slows one round of every configuration, not all rounds of one.
    fastest = {name: float("inf") for name, _, _ in configurations}
    for round_index in range(rounds + 1):
        for name, run, fp32_only in configurations:
            with full_precision() if fp32_only else nullcontext():
                seconds, _ = _timed(run, device)
            if round_index:  # round 0 is the warm-up: kernels chosen, memory allocated
                fastest[name] = min(fastest[name], seconds)
    count = len(lightness)
    results = {name: {"images_per_s": count / seconds, "megapixels_per_s": count * size * size / seconds / 1e6}
               for name, seconds in fastest.items()}
    results["pytorch_default"]["precision"] = default_precision
    results["onnxruntime_cpu_fp32"]["threads"] = threads
    results["onnxruntime_vs_pytorch_default"] = results["onnxruntime_cpu_fp32"]["images_per_s"] / results["pytorch_default"]["images_per_s"]
    results["onnxruntime_vs_pytorch_fp32"] = results["onnxruntime_cpu_fp32"]["images_per_s"] / results["pytorch_fp32"]["images_per_s"]
    onnx_all = np.concatenate(onnx_ab)
    vs_fp32 = float(np.abs(onnx_all - np.concatenate(fp32_ab)).max())
    vs_default = float(np.abs(onnx_all - np.concatenate(default_ab)).max())
    results["max_abs_ab_diff"] = {
        "vs_pytorch_fp32": vs_fp32,
        "vs_pytorch_default": vs_default,
        "limit_vs_fp32": PARITY_LIMIT_AB,  # the export's promise is checked against fp32; bf16 itself moves ab by more
        "within_limit": vs_fp32 <= PARITY_LIMIT_AB,
    }
    results["export_seconds"] = export_seconds
    results["rounds"] = rounds
    return results
