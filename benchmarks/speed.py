"""Wall time of the ``aec`` command, start-up included, and coding time per image with
the model loaded.

What a user waits for when running the CLI once (interpreter, imports and model loading
included): ``aec --help``, ``aec info``, ``aec encode`` and ``aec decode`` of one image,
the median of ``--repeats`` fresh processes each, after one untimed round (as a user's
installed package, with its bytecode compiled). Then, in this process with the model
loaded and ``--threads`` threads, the median encode and decode seconds per image
over the first ``--images`` images of ``--folder`` (after one warm-up); with
``--max-error K`` those files carry the residual layer (K = 0: lossless; the encoder
picks the base quality) and every decode is checked against K. The per-stage
speed of the codec (and frames per second at 1920x1080) is part of ``aec bench``
(:mod:`neuralcodec.bench.stage_timing`).

    python benchmarks/speed.py --image ../shared/datasets/kodak/kodim23.png
    python benchmarks/speed.py --max-error 0 --out benchmarks/results/speed-lossless.json
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

import neuralcodec  # noqa: E402, F401  (first: it names the BLAS's kernels before NumPy loads)
from benchmarks._report import save_json  # noqa: E402
from neuralcodec.cpu import blas_description  # noqa: E402


def _timed(command: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def cli_env() -> dict[str, str]:
    """The environment the CLI is timed in: a user's. Python keeps compiled bytecode of
    the package (pip writes it at install; an editable install on first import), so a
    PYTHONDONTWRITEBYTECODE in the caller's environment is dropped, and :func:`main`
    runs each command once untimed first."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cli_wall_time(image_path: Path, quality: float) -> dict[str, float]:
    """Wall seconds of `aec --help`, `aec encode`, `aec info` and `aec decode` as a user
    runs them (each a fresh process)."""
    env = cli_env()
    launcher = [sys.executable, str(ROOT / "bin" / "aec")]
    with tempfile.TemporaryDirectory() as tmp:
        aec, png = Path(tmp) / "x.aec", Path(tmp) / "x.png"
        t_help = _timed([*launcher, "--help"], env)
        t0 = time.perf_counter()
        subprocess.run([*launcher, "encode", str(image_path), str(aec), "-q", str(quality),
                        "--device", "cpu", "--quiet"], check=True, env=env)
        t_enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([*launcher, "decode", str(aec), str(png), "--device", "cpu", "--quiet"],
                       check=True, env=env)
        t_dec = time.perf_counter() - t0
        t_info = _timed([*launcher, "info", str(aec)], env)
    return {"cli_help_s": t_help, "cli_info_s": t_info, "cli_encode_s": t_enc,
            "cli_decode_s": t_dec}


def coding_time(folder: Path, count: int, quality: float, threads: int,
                max_error: int | None = None, model: str | None = None) -> dict[str, float]:
    """Median encode and decode seconds per image, model loaded, ``threads`` threads
    (``max_error``: with the residual layer, the base quality the encoder's choice)."""
    import numpy as np
    from PIL import Image

    from neuralcodec import Codec
    from neuralcodec.codec.threads import set_threads

    set_threads(threads)
    images = [Image.open(p).convert("RGB") for p in sorted(folder.glob("*.png"))[:count]]
    codec = Codec(device="cpu", model=model).load()
    def encode(im: Image.Image) -> bytes:
        if max_error is None:
            return codec.encode(im, quality)
        return codec.encode(im, None, max_error=max_error)

    codec.decode(encode(images[0]))  # warm-up
    encode_s, decode_s = [], []
    for im in images:
        t0 = time.perf_counter()
        data = encode(im)
        t1 = time.perf_counter()
        decoded = codec.decode(data)
        decode_s.append(time.perf_counter() - t1)
        encode_s.append(t1 - t0)
        if max_error is not None:
            error = np.abs(np.asarray(decoded, np.int16) - np.asarray(im, np.int16)).max()
            assert error <= max_error, f"decoded {error} levels off, above K = {max_error}"
    return {"encode_s": statistics.median(encode_s), "decode_s": statistics.median(decode_s)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default=str(ROOT.parent / "shared" / "datasets" / "kodak"
                                           / "kodim01.png"))
    ap.add_argument("--quality", type=float, default=75)
    ap.add_argument("--repeats", type=int, default=3, help="runs; the median is reported")
    ap.add_argument("--folder", default=str(ROOT.parent / "shared" / "datasets" / "kodak"),
                    help="images for the coding time with the model loaded")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None, help="the model of the coding time (default: "
                    "the default model; aec-of fits for AEC_OF_ITERATIONS iterations)")
    ap.add_argument("--max-error", type=int, default=None,
                    help="time files with the residual layer (0: lossless)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cli-wall-time.json"))
    args = ap.parse_args()
    image = Path(args.image)
    if not image.is_file():
        sys.exit(f"image not found: {image}")
    cli_wall_time(image, args.quality)  # untimed: bytecode written, files cached
    runs = [cli_wall_time(image, args.quality) for _ in range(args.repeats)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    median.update(coding_time(Path(args.folder), args.images, args.quality, args.threads,
                              args.max_error, args.model))
    env = {"machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
           "python": platform.python_version(), "image": image.name, "quality": args.quality,
           "threads": args.threads, "images": args.images, "max_error": args.max_error,
           "model": args.model, "aec_of_iterations": os.environ.get("AEC_OF_ITERATIONS"),
           "blas": blas_description()}
    for key, value in median.items():
        print(f"{key:13s} {value:.3f} s (median)")
    out = Path(args.out)
    save_json({"environment": env, "median": median, "runs": runs}, out)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
