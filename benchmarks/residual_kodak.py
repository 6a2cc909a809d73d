"""The exact residual model on Kodak: total bits per pixel (the base ``.aec`` file plus the
residual payload) per base quality and maximum error K, every image decoded back and
checked, and the residual's decode time.

Per image and quality the image is encoded once (default model, NumPy, effort 1); its
reconstruction is the exact synthesis of its decoded latents (what the residual layer
codes against); the residual is coded with the residual model (``--residual``) for each
K and decoded back: K = 0 must give the image, K > 0 every sample within K. The residual
payload counts its bytes only (the container's chunk header is not included). Decode
times are CPU seconds of this process (``time.process_time``: the shared machine's load
counts less) and wall seconds, the shortest of ``--repeats`` decodes, the residual decode
alone, model loaded, ``--threads`` BLAS threads.

    python benchmarks/residual_kodak.py --max-errors 0 --qualities 70   # 24 images, K = 0
    python benchmarks/residual_kodak.py --limit 4 --max-errors 0,1,2,4 --qualities 55,70,85
    python benchmarks/residual_kodak.py --limit 1 --max-errors 0 --threads 2 --repeats 3
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
from benchmarks._report import save_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_image_options(parser, "aec-hp-ckbd")
    parser.add_argument("--residual", default="aec-residual-1", help="the residual model")
    parser.add_argument("--qualities", default="70")
    parser.add_argument("--max-errors", default="0,1,2,4")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="decodes timed per payload")
    parser.add_argument("--save", default="benchmarks/results/residual-kodak.json")
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    import numpy as np
    from PIL import Image

    from neuralcodec import Codec
    from neuralcodec.codec.codec import rate_point
    from neuralcodec.codec.threads import set_threads
    from neuralcodec.cpu import blas_description
    from neuralcodec.families.hyperprior.exact_synthesis import ExactSynthesis
    from neuralcodec.residual.layer import load_residual_model

    set_threads(args.threads)
    codec = Codec(model=args.model, device="cpu", workers=1).load()
    exact = ExactSynthesis.of_model(codec.coder().info)
    residual = load_residual_model(args.residual)
    qualities = [float(q) for q in args.qualities.split(",")]
    max_errors = [int(k) for k in args.max_errors.split(",")]
    paths = sorted(Path(args.folder).glob("*.png"))[: args.limit]
    load_before = os.getloadavg()
    rows = []
    for path in paths:
        x = np.asarray(Image.open(path).convert("RGB"))
        h, w = x.shape[:2]
        for q in qualities:
            data = codec.encode(Image.fromarray(x), q)
            header, latents = codec.decode_latents(data)
            xhat = exact(latents.y_hat, rate_point(header.quality))[:h, :w]
            for k in max_errors:
                cpu = time.process_time()
                payload = residual.encode(x, xhat, k, header.quality_value)
                encode_cpu = time.process_time() - cpu
                decode_cpu, decode_s = float("inf"), float("inf")
                for _ in range(args.repeats):  # the shortest of the repeats
                    cpu, wall = time.process_time(), time.perf_counter()
                    out = residual.decode(payload, xhat, k, header.quality_value)
                    decode_cpu = min(decode_cpu, time.process_time() - cpu)
                    decode_s = min(decode_s, time.perf_counter() - wall)
                error = int(np.abs(out.astype(np.int16) - x).max())
                if error > k:
                    raise SystemExit(f"{path.name} q{q:g} K{k}: error {error} > {k}")
                row = {"image": path.name, "quality": q, "max_error": k,
                       "base_bpp": 8 * len(data) / (h * w),
                       "residual_bpp": 8 * len(payload) / (h * w),
                       "encode_cpu_s": encode_cpu, "decode_cpu_s": decode_cpu,
                       "decode_s": decode_s,
                       "max_sample_error": error}
                row["total_bpp"] = row["base_bpp"] + row["residual_bpp"]
                rows.append(row)
                print(f"{path.name} q{q:g} K{k}: base {row['base_bpp']:.3f} + residual "
                      f"{row['residual_bpp']:.3f} = {row['total_bpp']:.3f} bpp; residual "
                      f"encode {encode_cpu:.2f} / decode {decode_cpu:.2f} CPU s", flush=True)

    def mean(key: str, q: float, k: int) -> float:
        return float(np.mean([r[key] for r in rows if r["quality"] == q and r["max_error"] == k]))

    summary = {f"q{q:g}/K{k}": {key: mean(key, q, k) for key in
                                ("base_bpp", "residual_bpp", "total_bpp", "encode_cpu_s",
                                 "decode_cpu_s", "decode_s")}
               for q in qualities for k in max_errors}
    best = {f"K{k}": float(np.mean([min(r["total_bpp"] for r in rows if r["image"] == p.name
                                        and r["max_error"] == k) for p in paths]))
            for k in max_errors}
    result = {
        "what": "base .aec file + exact residual payload, bits per pixel, mean over images",
        "model": args.model, "residual_model": residual.name,
        "residual_fingerprint": residual.fingerprint, "images": len(paths),
        "threads": args.threads, "blas": blas_description(), "numpy": np.__version__,
        "load_average_before_after": [load_before, os.getloadavg()],
        "mean": summary, "mean_of_best_quality_per_image": best, "rows": rows,
        "note": args.note,
    }
    save_json(result, Path(args.save))
    print(f"\nmean over {len(paths)} images (total bpp; residual decode CPU s)")
    for key, v in summary.items():
        print(f"{key}: {v['total_bpp']:.3f} bpp (base {v['base_bpp']:.3f}, residual "
              f"{v['residual_bpp']:.3f}); decode {v['decode_cpu_s']:.2f} s")
    for key, v in best.items():
        print(f"{key}: best quality per image {v:.3f} bpp")


if __name__ == "__main__":
    main()
