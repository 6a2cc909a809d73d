"""Per-stage speed of the neural codec on CPU and GPU, and frames per second at 1080p.

Stages are the ones the coding path marks itself (:mod:`neuralcodec.stages`): analysis
and synthesis transforms, entropy parameters (``h_a`` and the exact parameter path, in
the families with a hyperprior; not separate in the others), entropy coding or decoding
(the range coder and its bookkeeping), and the container; so the figures are of the real
code path. On CUDA every stage boundary synchronises the device.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image

from ..codec import Codec
from ..cpu import blas_description, cpu_model
from ..stages import StageTimer

HD_SIZE = (1920, 1080)
ENCODE_STAGES = ("analysis transform", "entropy parameters", "entropy coding", "container")
DECODE_STAGES = ("container", "entropy parameters", "entropy decoding", "synthesis transform")


def synchronize(device: str | torch.device) -> None:
    """Wait for queued GPU work, so wall-clock time covers it."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def stage_seconds(codec: Codec, image: Image.Image, quality: float) -> dict[str, dict[str, float]]:
    """Seconds per stage of one encode and one decode of ``image`` at ``quality``."""
    result = {}
    for direction in ("encode", "decode"):
        if direction == "decode":
            data = codec.encode(image, quality)
        timer = StageTimer(lambda: synchronize(codec.device))
        with timer.active():
            synchronize(codec.device)
            t0 = time.perf_counter()
            data = codec.encode(image, quality) if direction == "encode" else codec.decode(data)
            synchronize(codec.device)
            total = time.perf_counter() - t0
        s = dict(timer.seconds)
        if "entropy parameters" not in s:
            s["entropy parameters"] = float("nan")  # not separable for this family
        s["other"] = total - sum(v for v in s.values() if v == v)  # padding, conversions
        s["total"] = total
        result[direction] = s
    return result


def _frame(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A test frame of ``size``: the first benchmark image resized (its detail is not HD)."""
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def _mean_stages(runs: Sequence[dict[str, dict[str, float]]], megapixels: float
                 ) -> dict[str, dict[str, dict[str, float]]]:
    """Mean seconds (and megapixels per second) per direction and stage over runs."""
    return {
        direction: {name: _rate(statistics.mean(r[direction][name] for r in runs), megapixels)
                    for name in runs[0][direction]}
        for direction in ("encode", "decode")
    }


def speed_report(
    images: Sequence[Image.Image],
    model: str | None,
    devices: Sequence[str],
    quality: float = 75,
    repeats: int = 3,
    log: Callable[[str], None] | None = None,
    frame_size: tuple[int, int] = HD_SIZE,
) -> dict[str, Any]:
    """Per device, after a warm-up: mean seconds and megapixels per second per stage over
    ``images``, and the same for a ``frame_size`` frame (1920x1080) over ``repeats`` runs,
    with frames per second from the median whole encode and decode."""
    report: dict[str, Any] = {"quality": quality, "images": len(images), "devices": {}}
    for device in devices:
        codec = Codec(model=model, device=device).load()
        codec.decode(codec.encode(images[0], quality))  # warm-up: allocator, kernels
        megapixels = statistics.mean(im.width * im.height for im in images) / 1e6
        stages = _mean_stages([stage_seconds(codec, im, quality) for im in images], megapixels)
        hd = _frame(images[0], frame_size)
        codec.decode(codec.encode(hd, quality))  # warm-up at this size
        hd_runs = [stage_seconds(codec, hd, quality) for _ in range(repeats)]
        encode_s = statistics.median(r["encode"]["total"] for r in hd_runs)
        decode_s = statistics.median(r["decode"]["total"] for r in hd_runs)
        entry = {
            "device_name": device_name(codec.device),
            "model": codec.model_name,
            "megapixels_per_image": megapixels,
            "stages": stages,
            "frame": {
                "size": list(frame_size),
                "stages": _mean_stages(hd_runs, frame_size[0] * frame_size[1] / 1e6),
                "encode_s": encode_s,
                "decode_s": decode_s,
                "encode_fps": 1 / encode_s,
                "decode_fps": 1 / decode_s,
            },
        }
        report["devices"][str(codec.device)] = entry
        if log:
            log(f"speed on {entry['device_name']}: {frame_size[0]}x{frame_size[1]} frame, "
                f"encode {1 / encode_s:.2f} fps, decode {1 / decode_s:.2f} fps")
    return report


def _rate(seconds: float, megapixels: float) -> dict[str, float]:
    mp_per_s = megapixels / seconds if seconds > 0 else float("inf")
    return {"seconds": seconds, "megapixels_per_s": mp_per_s}


def device_name(device: str | torch.device) -> str:
    """A human name for the device: the GPU's model, or the CPU's (with the threads of
    the coding path's BLAS, which runs its transforms there)."""
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(device)
    return f"CPU {cpu_model()}, {blas_description()}"


def speed_markdown(report: dict[str, Any]) -> list[str]:
    """The speed report as markdown tables (one column pair per device)."""
    devices = report["devices"]
    if not devices:
        return []
    columns = [(d["device_name"], f"{report['images']} image(s)", d["stages"])
               for d in devices.values()]
    columns += [(d["device_name"], "{}×{}".format(*d["frame"]["size"]), d["frame"]["stages"])
                for d in devices.values()]
    lines = [
        f"## Speed of the neural codec (quality {report['quality']:g}; mean seconds per image "
        "after a warm-up, and megapixels per second)",
        "",
        "| stage | " + " | ".join(f"{name}, {what}: s | MP/s" for name, what, _ in columns)
        + " |",
        "|---|" + "---:|---:|" * len(columns),
    ]
    for direction, stage_names in (("encode", ENCODE_STAGES), ("decode", DECODE_STAGES)):
        for name in (*stage_names, "other", "total"):
            cells = []
            for _, _, stages in columns:
                v = stages[direction].get(name)
                ok = v is not None and v["seconds"] == v["seconds"]
                cells.append(f"{v['seconds']:.4f} | {v['megapixels_per_s']:.2f}" if ok
                             else "n/a | n/a")
            lines.append(f"| {direction}: {name} | " + " | ".join(cells) + " |")
    lines += ["", "| {}×{} frame (median) | ".format(*next(iter(devices.values()))["frame"]["size"])
              + " | ".join(d["device_name"] for d in devices.values()) + " |",
              "|---|" + "---:|" * len(devices)]
    for key, label in (("encode_fps", "encode fps"), ("decode_fps", "decode fps")):
        lines.append(f"| {label} | " + " | ".join(f"{d['frame'][key]:.2f}"
                                                 for d in devices.values()) + " |")
    return lines + [""]
