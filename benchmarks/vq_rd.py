"""Kodak rate-distortion of a VQ-VAE model next to JPEG and the hyperprior.

Every image through ``Codec`` (whole-file bpp, RGB PSNR against the original PNG) at each
quality, JPEG (Pillow defaults except quality) at a quality sweep, the hyperprior's curve
from the committed Kodak results (same machine and weights), and BD-rates (PCHIP) over
each pair's overlapping range:

    nice -n 5 python benchmarks/vq_rd.py --model aec-vq --qualities 0,5,10,15,20,30,40,60
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

from neuralcodec import Codec  # noqa: E402
from neuralcodec.metrics import bd_psnr, bd_rate, bpp, psnr  # noqa: E402

KODAK = ROOT.parent / "shared" / "datasets" / "kodak"
HP_RESULTS = ROOT / "benchmarks" / "results" / "kodak-rd" / "results.json"
JPEG_QUALITIES = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def jpeg_point(image: Image.Image, quality: int) -> tuple[int, float]:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return len(buf.getvalue()), psnr(np.asarray(image), back)


def mean_curve(rows: list[dict], codec: str) -> list[dict]:
    settings = sorted({r["quality"] for r in rows if r["codec"] == codec})
    out = []
    for q in settings:
        sel = [r for r in rows if r["codec"] == codec and r["quality"] == q]
        out.append({"quality": q, "images": len(sel),
                    "bpp": float(np.mean([r["bpp"] for r in sel])),
                    "psnr": float(np.mean([r["psnr"] for r in sel])),
                    "encode_s": float(np.mean([r.get("encode_s", 0) for r in sel])),
                    "decode_s": float(np.mean([r.get("decode_s", 0) for r in sel]))})
    return out


def bd_rows(curves: dict[str, list[dict]], pairs: list[tuple[str, str]]) -> list[dict]:
    rows = []
    for test, anchor in pairs:
        a, b = curves[anchor], curves[test]
        ra, da = [p["bpp"] for p in a], [p["psnr"] for p in a]
        rb, db = [p["bpp"] for p in b], [p["psnr"] for p in b]
        lo, hi = max(min(ra), min(rb)), min(max(ra), max(rb))
        try:
            rate, gain = bd_rate(ra, da, rb, db), bd_psnr(ra, da, rb, db)
        except ValueError as exc:
            rows.append({"test": test, "anchor": anchor, "error": str(exc)})
            continue
        rows.append({"test": test, "anchor": anchor, "bd_rate_pct": rate, "bd_psnr_db": gain,
                     "overlap_bpp": [lo, hi]})
    return rows


def summary(curves: dict[str, list[dict]], bds: list[dict], images: int) -> str:
    lines = [f"# VQ-VAE rate-distortion on {images} Kodak image(s)", "",
             "Mean bpp (whole file) and mean RGB PSNR over images per setting; seconds are "
             "mean encode/decode per image (shared 2-core CPU).", "",
             "| codec | quality | bpp | PSNR (dB) | encode (s) | decode (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, curve in curves.items():
        for p in curve:
            lines.append(f"| {name} | {p['quality']} | {p['bpp']:.4f} | {p['psnr']:.3f} | "
                         f"{p['encode_s']:.3f} | {p['decode_s']:.3f} |")
    lines += ["", "## Bjøntegaard deltas (PCHIP, RGB PSNR, over the overlapping bpp range)", "",
              "| test vs anchor | overlap (bpp) | BD-rate (%) | BD-PSNR (dB) |",
              "|---|---|---:|---:|"]
    for r in bds:
        if "error" in r:
            lines.append(f"| {r['test']} vs {r['anchor']} | none | — | — |")
        else:
            lo, hi = r["overlap_bpp"]
            lines.append(f"| {r['test']} vs {r['anchor']} | {lo:.3f}–{hi:.3f} | "
                         f"{r['bd_rate_pct']:+.2f} | {r['bd_psnr_db']:+.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="aec-vq")
    p.add_argument("--qualities", default="0,5,10,15,20,30,40,60")
    p.add_argument("--images", type=Path, default=KODAK)
    p.add_argument("--limit", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "vq-rd")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    qualities = [float(q) for q in args.qualities.split(",")]
    paths = sorted(args.images.glob("*.png"))[: args.limit]
    codec = Codec(model=args.model, device="cpu").load()
    rows = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        w, h = image.size
        original = np.asarray(image)
        for q in qualities:
            t0 = time.perf_counter()
            data = codec.encode(image, q)
            t1 = time.perf_counter()
            back = np.asarray(codec.decode(data).convert("RGB"))
            t2 = time.perf_counter()
            rows.append({"image": path.name, "codec": args.model, "quality": q,
                         "bytes": len(data), "bpp": bpp(len(data), w, h),
                         "psnr": psnr(original, back), "encode_s": t1 - t0, "decode_s": t2 - t1})
        for q in JPEG_QUALITIES:
            size, score = jpeg_point(image, q)
            rows.append({"image": path.name, "codec": "jpeg", "quality": q, "bytes": size,
                         "bpp": bpp(size, w, h), "psnr": score})
        print(f"{path.name}: " + ", ".join(
            f"q{r['quality']:g} {r['bpp']:.3f}/{r['psnr']:.2f}" for r in rows[-len(JPEG_QUALITIES)
                                                                       - len(qualities):
                                                                       -len(JPEG_QUALITIES)]),
              flush=True)
    curves = {args.model: mean_curve(rows, args.model), "jpeg": mean_curve(rows, "jpeg")}
    pairs = [(args.model, "jpeg")]
    hp = json.loads(HP_RESULTS.read_text())
    if len(paths) == len(hp["images"]):  # the committed hyperprior curve is on all 24
        model = hp["environment"]["model"]
        curves[model] = [{**p, "encode_s": p["encode_s"], "decode_s": p["decode_s"]}
                         for p in hp["aggregates"]["aec"]]
        pairs += [(args.model, model), (model, "jpeg")]
    bds = bd_rows(curves, pairs)
    args.out.mkdir(parents=True, exist_ok=True)
    env = {"platform": platform.platform(), "python": platform.python_version(),
           "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "hyperprior_curve_from": str(HP_RESULTS.relative_to(ROOT))}
    (args.out / "results.json").write_text(json.dumps(
        {"model": args.model, "images": [p.name for p in paths], "environment": env,
         "curves": curves, "bd": bds, "rows": rows}, indent=1) + "\n")
    text = summary(curves, bds, len(paths))
    (args.out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
