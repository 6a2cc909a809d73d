"""Rate-distortion benchmark: aec vs JPEG vs WebP on a folder of images (Kodak by default).

Measures bits per pixel (whole encoded file) and RGB PSNR for every image and quality
setting, averages bpp and PSNR per setting over the images (the usual convention for
published Kodak curves), and reports Bjøntegaard delta rates between the averaged curves.

    python benchmarks/kodak_rd.py                         # full run, all codecs
    python benchmarks/kodak_rd.py --limit 2 --codecs jpeg,webp

Writes results.json, summary.md and rd-psnr.png to --out.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # allow `python benchmarks/kodak_rd.py` without installing
    sys.path.insert(0, str(REPO_ROOT))

from neuralcodec.metrics import bd_psnr, bd_rate, bpp, psnr  # noqa: E402

DEFAULT_IMAGES = REPO_ROOT.parent / "shared" / "datasets" / "kodak"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "kodak-rd"
DEFAULT_AEC_QUALITIES = "0,15,30,45,60,75,90,100"
DEFAULT_PILLOW_QUALITIES = "5,10,15,20,30,40,50,60,70,80,90,95"
IMAGE_EXTENSIONS = {".png", ".ppm", ".bmp", ".tif", ".tiff"}  # lossless sources only
# aec-v1: the same model through the float64 entropy-parameter path of format version 1,
# the reference for the rate cost of the integer path (format version 2, "aec").
ALL_CODECS = ("aec", "aec-v1", "jpeg", "webp")
# (test, anchor) pairs; WebP vs JPEG is a sanity check against published numbers (~-37%).
BD_PAIRS = (("aec", "jpeg"), ("aec", "webp"), ("webp", "jpeg"), ("aec", "aec-v1"))


@dataclass
class Row:
    """One image encoded at one setting."""

    image: str
    codec: str
    quality: float
    width: int
    height: int
    bytes: int
    bpp: float
    psnr: float
    encode_s: float
    decode_s: float


# An encoder/decoder pair under test: image, quality -> bytes; bytes -> image.
Encode = Callable[[Image.Image, float], bytes]
Decode = Callable[[bytes], Image.Image]


def pillow_codec(fmt: str, **options: Any) -> tuple[Encode, Decode]:
    """Pillow encoder with its defaults except quality (and ``options``)."""

    def encode(image: Image.Image, quality: float) -> bytes:
        buf = io.BytesIO()
        image.save(buf, format=fmt, quality=int(quality), **options)
        return buf.getvalue()

    def decode(data: bytes) -> Image.Image:
        image = Image.open(io.BytesIO(data))
        image.load()  # Pillow decodes lazily; force it inside the timed region
        return image

    return encode, decode


def aec_codec(
    model: str | None, device: str, format_version: int | None = None
) -> tuple[Encode, Decode, str]:
    """The aec codec with its model loaded. Imported lazily: it pulls in torch and the
    model weights, which the classical-codec part of the benchmark does not need."""
    from neuralcodec import Codec

    options = {} if format_version is None else {"format_version": format_version}
    codec = Codec(model=model, device=device, **options)
    codec.load()  # load weights now so they are not timed with the first image

    def encode(image: Image.Image, quality: float) -> bytes:
        q = int(quality) if float(quality).is_integer() else quality
        return codec.encode(image, quality=q)

    name = getattr(codec, "model_name", None) or model or "default"
    return encode, codec.decode, str(name)


def measure(
    name: str, image: Image.Image, codec: str, quality: float, encode: Encode, decode: Decode
) -> Row:
    t0 = time.perf_counter()
    data = encode(image, quality)
    t1 = time.perf_counter()
    restored = decode(data)
    t2 = time.perf_counter()
    restored = restored.convert("RGB")
    if restored.size != image.size:
        raise RuntimeError(f"{codec} q={quality} on {name}: size {restored.size} != {image.size}")
    w, h = image.size
    return Row(
        image=name,
        codec=codec,
        quality=quality,
        width=w,
        height=h,
        bytes=len(data),
        bpp=bpp(len(data), w, h),
        psnr=psnr(np.asarray(image), np.asarray(restored)),
        encode_s=t1 - t0,
        decode_s=t2 - t1,
    )


def aggregate(rows: Sequence[Row]) -> dict[str, list[dict[str, float]]]:
    """Per codec, one point per quality setting: means over images."""
    out: dict[str, list[dict[str, float]]] = {}
    groups: dict[tuple[str, float], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.codec, r.quality), []).append(r)
    for (codec, quality), group in sorted(groups.items()):
        out.setdefault(codec, []).append(
            {
                "quality": quality,
                "images": len(group),
                "bpp": float(np.mean([r.bpp for r in group])),
                "psnr": float(np.mean([r.psnr for r in group])),
                "encode_s": float(np.mean([r.encode_s for r in group])),
                "decode_s": float(np.mean([r.decode_s for r in group])),
            }
        )
    return out


def bd_table(curves: dict[str, list[dict[str, float]]]) -> list[dict[str, Any]]:
    results = []
    for test, anchor in BD_PAIRS:
        if test not in curves or anchor not in curves:
            continue
        a, b = curves[anchor], curves[test]
        entry: dict[str, Any] = {"test": test, "anchor": anchor}
        try:
            entry["bd_rate_pct"] = bd_rate(
                [p["bpp"] for p in a], [p["psnr"] for p in a],
                [p["bpp"] for p in b], [p["psnr"] for p in b],
            )  # fmt: skip
            entry["bd_psnr_db"] = bd_psnr(
                [p["bpp"] for p in a], [p["psnr"] for p in a],
                [p["bpp"] for p in b], [p["psnr"] for p in b],
            )  # fmt: skip
        except ValueError as exc:  # e.g. curves that do not overlap: report, do not crash
            entry["error"] = str(exc)
        results.append(entry)
    return results


def environment(model_name: str | None, threads: int | None) -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    env: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "versions": {
            p: version(p)
            for p in ("torch", "compressai", "constriction", "pillow", "numpy", "scipy")
        },
        "model": model_name,
        "torch_threads": None,
    }
    if "torch" in sys.modules:  # importing neuralcodec pulls torch in; no need to import it here
        env["torch_threads"] = sys.modules["torch"].get_num_threads()
    elif threads is not None:
        env["torch_threads"] = threads
    return env


def markdown(
    curves: dict[str, list[dict[str, float]]], bd: list[dict[str, Any]], n_images: int
) -> str:
    lines = [f"# Rate-distortion on {n_images} image(s)", ""]
    lines += [
        "Mean bpp (whole file) and mean RGB PSNR over images, per quality setting; "
        "times are mean seconds per image.",
        "",
        "| codec | quality | bpp | PSNR (dB) | encode (s) | decode (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for codec, points in curves.items():
        for p in points:
            lines.append(
                f"| {codec} | {p['quality']:g} | {p['bpp']:.4f} | {p['psnr']:.3f} "
                f"| {p['encode_s']:.4f} | {p['decode_s']:.4f} |"
            )
    if bd:
        lines += [
            "",
            "## Bjøntegaard deltas (PCHIP, PSNR)",
            "",
            "Negative BD-rate: the test codec needs fewer bits than the anchor for equal PSNR.",
            "",
            "| test vs anchor | BD-rate (%) | BD-PSNR (dB) |",
            "|---|---:|---:|",
        ]
        for e in bd:
            if "error" in e:
                lines.append(f"| {e['test']} vs {e['anchor']} | n/a | n/a ({e['error']}) |")
            else:
                lines.append(
                    f"| {e['test']} vs {e['anchor']} | {e['bd_rate_pct']:+.2f} "
                    f"| {e['bd_psnr_db']:+.3f} |"
                )
    return "\n".join(lines) + "\n"


def plot(curves: dict[str, list[dict[str, float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on benchmark machines
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for codec, points in curves.items():
        ax.plot([p["bpp"] for p in points], [p["psnr"] for p in points], "o-", ms=3, label=codec)
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("RGB PSNR (dB)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _finite(value: Any) -> Any:
    """JSON has no inf/nan: write them as null (e.g. PSNR of a lossless point)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def parse_qualities(text: str) -> list[float]:
    try:
        values: list[float] = [float(q) for q in text.split(",") if q.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad quality list {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("empty quality list")
    return [int(v) if v.is_integer() else v for v in values]  # "50" stays 50 in the JSON


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder of PNG images")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--codecs", default="aec,jpeg,webp",
                   help="subset of aec,aec-v1,jpeg,webp (default aec,jpeg,webp)")
    p.add_argument("--qualities", type=parse_qualities, default=DEFAULT_AEC_QUALITIES,
                   help=f"aec qualities (default {DEFAULT_AEC_QUALITIES})")  # fmt: skip
    p.add_argument("--pillow-qualities", type=parse_qualities, default=DEFAULT_PILLOW_QUALITIES,
                   help=f"JPEG/WebP qualities (default {DEFAULT_PILLOW_QUALITIES})")  # fmt: skip
    p.add_argument("--model", default=None, help="aec model name (default: the default model)")
    p.add_argument("--device", default="cpu", help="aec device (cpu, cuda, auto)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--no-warmup", action="store_true",
                   help="do not run one untimed aec encode/decode before measuring")  # fmt: skip
    args = p.parse_args(argv)
    args.codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    unknown = set(args.codecs) - set(ALL_CODECS)
    if unknown:
        p.error(f"unknown codec(s): {', '.join(sorted(unknown))}")
    return args


def list_images(folder: Path, limit: int | None) -> list[Path]:
    if not folder.is_dir():
        raise SystemExit(f"image folder not found: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise SystemExit(f"no images in {folder}")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    paths = list_images(args.images, args.limit)

    if args.threads is not None:
        import torch  # only the aec path uses torch, but the flag should hold either way

        torch.set_num_threads(args.threads)

    codecs: list[tuple[str, list[float], Encode, Decode]] = []
    model_name = None
    if "aec" in args.codecs:
        enc, dec, model_name = aec_codec(args.model, args.device)
        codecs.append(("aec", args.qualities, enc, dec))
    if "aec-v1" in args.codecs:
        enc, dec, model_name = aec_codec(args.model, args.device, format_version=1)
        codecs.append(("aec-v1", args.qualities, enc, dec))
    if "jpeg" in args.codecs:
        codecs.append(("jpeg", args.pillow_qualities, *pillow_codec("JPEG")))
    if "webp" in args.codecs:
        # method=6: slowest, best compression; the fair setting for an RD comparison.
        codecs.append(("webp", args.pillow_qualities, *pillow_codec("WEBP", method=6)))

    rows: list[Row] = []
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            image = im.convert("RGB")
        if i == 0 and codecs and codecs[0][0].startswith("aec") and not args.no_warmup:
            # One-time costs (allocator, kernel selection) should not land on image 1.
            enc, dec = codecs[0][2], codecs[0][3]
            dec(enc(image, args.qualities[len(args.qualities) // 2]))
        for codec, qualities, enc, dec in codecs:
            for q in qualities:
                rows.append(measure(path.name, image, codec, q, enc, dec))
        print(f"[{i + 1}/{len(paths)}] {path.name}", file=sys.stderr, flush=True)

    curves = aggregate(rows)
    bd = bd_table(curves)
    summary = markdown(curves, bd, len(paths))
    print(summary)

    args.out.mkdir(parents=True, exist_ok=True)
    results = {
        "images_dir": str(args.images),
        "images": [p.name for p in paths],
        "settings": {
            "aec_qualities": args.qualities,
            "pillow_qualities": args.pillow_qualities,
            "jpeg": "Pillow defaults except quality",
            "webp": "Pillow defaults except quality, method=6",
            "device": args.device,
        },
        "environment": environment(model_name, args.threads),
        "aggregates": curves,
        "bd": bd,
        "rows": [asdict(r) for r in rows],
    }
    (args.out / "results.json").write_text(json.dumps(_finite(results), indent=2) + "\n")
    (args.out / "summary.md").write_text(summary)
    plot(curves, args.out / "rd-psnr.png", f"RGB PSNR vs bpp, {len(paths)} image(s)")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
