"""The exact synthesis transform against the float one, on Kodak: the cost in dB at equal
bits, and the time.

Per image and quality, the image is encoded once (default model, NumPy, effort 1, one
tile) and its decoded latents go through both synthesis transforms: the float ``g_s``
the decoder uses today (pixels rounded as ``aec decode`` rounds them) and the exact one
(:mod:`neuralcodec.families.hyperprior.exact_synthesis`). Same latents, same bits, so
the PSNR difference is the whole cost. It reports per quality the mean bpp and both mean
PSNRs, the BD-rate of the exact curve against the float one, how many pixel values
differ and by how much, the largest activation of the exact transform against its clamp
limits, and the synthesis time of each (model loaded, ``--threads`` threads, the median
over images of the minimum of ``--repeats`` runs; nothing else is paused, so the machine's
load average is recorded beside them).

    python benchmarks/exact_synthesis.py                       # 24 Kodak images
    python benchmarks/exact_synthesis.py --limit 6 --qualities 0,50,100
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

import neuralcodec  # noqa: E402, F401  (first: it names the BLAS's kernels before NumPy loads)
from benchmarks._inputs import add_image_options  # noqa: E402
from benchmarks._report import print_and_save  # noqa: E402


def best_of(repeats: int, fn, *args):
    """(result, the shortest of ``repeats`` wall times)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - start)
    return out, min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_image_options(parser, "aec-hp-ckbd")
    parser.add_argument("--qualities", default="0,25,50,75,100")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each transform")
    parser.add_argument("--save", default="benchmarks/results/exact-synthesis.json")
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    import numpy as np
    from PIL import Image

    from neuralcodec import Codec
    from neuralcodec.codec.codec import rate_point
    from neuralcodec.codec.threads import set_threads
    from neuralcodec.cpu import blas_description
    from neuralcodec.families.hyperprior import exact_synthesis as es
    from neuralcodec.metrics import bd_rate, psnr

    set_threads(args.threads)
    codec = Codec(model=args.model, device="cpu").load()
    coder = codec.coder()
    exact = es.ExactSynthesis.of_model(coder.info)
    exact.peaks = {}
    qualities = [float(q) for q in args.qualities.split(",")]
    paths = sorted(Path(args.folder).glob("*.png"))[: args.limit]
    load_before = os.getloadavg()
    rows = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        original = np.asarray(image)
        h, w = original.shape[:2]
        for q in qualities:
            data = codec.encode(image, q)
            header, latents = codec.decode_latents(data)
            point = rate_point(header.quality)
            float_out, float_s = best_of(args.repeats, coder.synthesize, latents, point)
            exact_out, exact_s = best_of(args.repeats, exact, latents.y_hat, point)
            float_px = np.round(np.clip(float_out[:h, :w], 0, 1)
                                * np.float32(255)).astype(np.uint8)
            exact_px = exact_out[:h, :w]
            diff = np.abs(float_px.astype(np.int16) - exact_px)
            rows.append({
                "image": path.name, "quality": q, "bpp": 8 * len(data) / (w * h),
                "psnr_float": psnr(original, float_px), "psnr_exact": psnr(original, exact_px),
                "max_pixel_difference": int(diff.max()),
                "differing_values": float((diff > 0).mean()),
                "seconds_float": float_s, "seconds_exact": exact_s,
            })
            r = rows[-1]
            print(f"{path.name} q{q:g}: {r['bpp']:.3f} bpp, float {r['psnr_float']:.3f} dB, "
                  f"exact {r['psnr_exact']:.3f} dB, max diff {r['max_pixel_difference']}, "
                  f"{r['seconds_float']:.3f} s vs {r['seconds_exact']:.3f} s", flush=True)
    load_after = os.getloadavg()

    def mean(key: str, q: float) -> float:
        return float(np.mean([r[key] for r in rows if r["quality"] == q]))

    curves = {q: {key: mean(key, q) for key in ("bpp", "psnr_float", "psnr_exact")}
              for q in qualities}
    bpp = [curves[q]["bpp"] for q in qualities]
    per_quality = {f"{q:g}": {**curves[q],
                              "delta_db": curves[q]["psnr_exact"] - curves[q]["psnr_float"]}
                   for q in qualities}
    times = {name: float(np.median([r[f"seconds_{name}"] for r in rows]))
             for name in ("float", "exact")}
    limits = {"input": es.INPUT_LIMIT}
    result = {
        "model": args.model, "images": len(paths), "qualities": qualities,
        "threads": args.threads, "repeats": args.repeats, "blas": blas_description(),
        "numpy": np.__version__, "load_average_before_after": [load_before, load_after],
        "bd_rate_exact_vs_float_percent": bd_rate(  # a curve needs 2 qualities or more
            bpp, [curves[q]["psnr_float"] for q in qualities],
            bpp, [curves[q]["psnr_exact"] for q in qualities]) if len(qualities) > 1 else None,
        "per_quality": per_quality,
        "max_pixel_difference": max(r["max_pixel_difference"] for r in rows),
        "differing_values_mean": float(np.mean([r["differing_values"] for r in rows])),
        "synthesis_seconds_median": times,
        "exact_over_float_time": times["exact"] / times["float"],
        "peaks_vs_limits": {k: {"max_abs": v, "limit": limits.get(k, es.ACT_LIMIT)}
                            for k, v in exact.peaks.items()},
        "rows": rows,
        "note": args.note,
    }
    print_and_save(result, Path(args.save) if args.save else None)


if __name__ == "__main__":
    main()
