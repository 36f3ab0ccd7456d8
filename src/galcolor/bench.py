"""`galcolor bench`: throughput and peak memory of training and colourization, each beside a
baseline run in the same process (figures for docs/performance.md, never assertions in tests)."""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .checkpoint import LoadedModel
from .color import normalise_ab, normalise_lightness, rgb_to_lab
from .config import ModelConfig
from .device import autocast, bf16_autocast_pays, resolve_device
from .models import build_model

# Dense bf16 tensor-core peaks (FLOP/s) for MFU; CPUs have no such single figure, so no MFU there.
DENSE_BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}


def peak_rss_bytes() -> int:
    """This process's peak resident memory since the last reset_peak_rss() (Linux VmHWM)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> None:
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


def bench_train(config: ModelConfig, device_name: str = "auto", batch_size: int = 64, crop: int = 128, steps: int = 10) -> dict:
    """The tuned step (channels_last, bf16 autocast where it pays, fused AdamW on CUDA) against an
    eager fp32 contiguous step of the same model and batch."""
    device = resolve_device(device_name)
    torch.manual_seed(0)
    rgb = torch.rand(batch_size, 3, crop, crop, device=device)
    lab = rgb_to_lab(rgb)
    results = {}
    for name, tuned in (("baseline_eager_fp32", False), ("tuned", True)):
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
            return batch_size

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


def bench_colorize(model: LoadedModel, images: int = 64, size: int = 256, batch_size: int = 16, workers: int = 2) -> dict:
    """The folder pipeline (threads for decode and PNG encode, batches) against a per-image loop."""
    from .api import colorize_lab
    from .color import lab_array_to_rgb8
    from .io import read_image, write_png
    from .pipeline import Job, colorize_files

    device = next(model.network.parameters()).device
    with tempfile.TemporaryDirectory() as tmp:
        sources = synthetic_galaxies(Path(tmp), images, size)
        out = Path(tmp) / "out"

        def per_image_loop() -> int:
            for source in sources:
                predicted, _ = colorize_lab(read_image(source).rgb, model)
                write_png(out / "loop" / f"{source.stem}.png", lab_array_to_rgb8(predicted))
            return len(sources)

        def pipeline() -> int:
            jobs = [Job(s, out / "pipe" / f"{s.stem}.png") for s in sources]
            outcomes = colorize_files(jobs, model, batch_size=batch_size, workers=workers, progress=False)
            return sum(o.status == "coloured" for o in outcomes)

        per_image_loop()  # warm-up
        results = {}
        for name, run in (("baseline_per_image", per_image_loop), ("pipeline", pipeline)):
            reset_peak_rss()
            seconds, done = _timed(run, device)
            results[name] = {
                "images_per_s": done / seconds,
                "megapixels_per_s": done * size * size / seconds / 1e6,
                "peak_rss_bytes": peak_rss_bytes(),
            }
    results["speedup"] = results["pipeline"]["images_per_s"] / results["baseline_per_image"]["images_per_s"]
    return results


def bench_tile(model: LoadedModel, size: int = 4096, tile: int = 1024) -> dict:
    """One large image coloured in tiles, against the same image coloured whole at a size that fits."""
    from .infer import predict_ab, predict_ab_tiled

    device = next(model.network.parameters()).device
    results = {}
    whole_size = min(size, 2048)
    for name, side, run in (
        ("baseline_whole", whole_size, lambda light: predict_ab(model, light)),
        ("tiled", size, lambda light: predict_ab_tiled(model, light, tile=tile)),
    ):
        lightness = torch.rand(1, 1, side, side) * 60
        reset_peak_rss()
        seconds, _ = _timed(lambda: (run(lightness), 1)[1], device)
        results[name] = {"side": side, "megapixels_per_s": side * side / seconds / 1e6, "peak_rss_bytes": peak_rss_bytes()}
    return results
