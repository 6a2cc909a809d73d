"""Wall time of the ``aec`` command for one image, start-up included.

The per-stage speed of the codec itself (seconds and megapixels per second of the
analysis/synthesis transforms, entropy parameters, entropy coding and container, on CPU
and GPU, and frames per second at 1920x1080) is part of ``aec bench``
(:mod:`neuralcodec.bench_speed`); this script measures what a user waits for when running
the CLI once: interpreter, imports and model loading included.

    python benchmarks/speed.py --image ../shared/datasets/kodak/kodim01.png
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import save_json  # noqa: E402


def cli_wall_time(image_path: Path, quality: float) -> dict[str, float]:
    """Wall seconds of `aec encode` and `aec decode` as a user runs them (fresh process)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    launcher = [sys.executable, str(ROOT / "bin" / "aec")]
    with tempfile.TemporaryDirectory() as tmp:
        aec, png = Path(tmp) / "x.aec", Path(tmp) / "x.png"
        t0 = time.perf_counter()
        subprocess.run([*launcher, "encode", str(image_path), str(aec), "-q", str(quality),
                        "--device", "cpu", "--quiet"], check=True, env=env)
        t_enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([*launcher, "decode", str(aec), str(png), "--device", "cpu", "--quiet"],
                       check=True, env=env)
        t_dec = time.perf_counter() - t0
    return {"cli_encode_s": t_enc, "cli_decode_s": t_dec}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default=str(ROOT.parent / "shared" / "datasets" / "kodak"
                                           / "kodim01.png"))
    ap.add_argument("--quality", type=float, default=75)
    ap.add_argument("--repeats", type=int, default=3, help="runs; the median is reported")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cli-wall-time.json"))
    args = ap.parse_args()
    image = Path(args.image)
    if not image.is_file():
        sys.exit(f"image not found: {image}")
    runs = [cli_wall_time(image, args.quality) for _ in range(args.repeats)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    env = {"machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
           "python": platform.python_version(), "image": image.name, "quality": args.quality}
    for key, value in median.items():
        print(f"{key:13s} {value:.2f} s (median of {args.repeats})")
    out = Path(args.out)
    save_json({"environment": env, "median": median, "runs": runs}, out)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
