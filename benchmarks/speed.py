"""CPU/GPU speed of the shipped model on a folder of images (default: Kodak).

Measures, after the model is loaded: encode and decode seconds per image, split into
stages (analysis transform, latent coding = entropy parameters + range coder, synthesis),
and the wall time of the real CLI for one image including interpreter and model start-up.

    python benchmarks/speed.py --images ../shared/datasets/kodak --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neuralcodec import Codec  # noqa: E402
from neuralcodec.container import quantize_quality  # noqa: E402
from neuralcodec.model import rate_level  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def stage_times(codec: Codec, image: Image.Image, quality: float) -> dict:
    """Seconds per stage for one image (the same steps Codec.encode/decode take)."""
    coder = codec.coder()
    latent = coder.latent_codec(codec.format_version)
    model = coder.model
    q = quantize_quality(quality)
    level = rate_level(q / 100, model.config.levels)
    lv = torch.tensor([level], device=codec.device)
    t = {}
    with torch.no_grad():
        t0 = time.perf_counter()
        prepared = codec.prepare(image)
        x = codec.padded_input(prepared, coder)
        y = model.analysis(x, lv)
        _sync(codec.device)
        t["analysis"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        streams, _ = latent.compress(y, q)
        t["latent_encode"] = time.perf_counter() - t0
        hw = (y.shape[2], y.shape[3])
        t0 = time.perf_counter()
        decoded = latent.decompress(streams, hw, q)
        t["latent_decode"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.synthesis(decoded.y_hat.to(codec.device), lv)
        _sync(codec.device)
        t["synthesis"] = time.perf_counter() - t0
    return t


def cli_wall_time(image_path: Path, quality: float) -> dict:
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
    ap.add_argument("--images", default=str(ROOT.parent / "shared" / "datasets" / "kodak"))
    ap.add_argument("--quality", type=float, default=75)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speed-cpu.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    paths = sorted(Path(args.images).glob("*.png"))[: args.limit]
    if not paths:
        sys.exit(f"no PNG images in {args.images}")
    codec = Codec(device=args.device).load()
    images = [Image.open(p).convert("RGB") for p in paths]
    codec.decode(codec.encode(images[0], args.quality))  # warm-up

    rows = []
    for path, im in zip(paths, images, strict=True):
        t0 = time.perf_counter()
        data = codec.encode(im, args.quality)
        t_enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        codec.decode(data)
        t_dec = time.perf_counter() - t0
        row = {"image": path.name, "encode_s": t_enc, "decode_s": t_dec}
        row.update(stage_times(codec, im, args.quality))
        rows.append(row)
        print(f"{path.name}: encode {t_enc:.3f} s, decode {t_dec:.3f} s", flush=True)

    keys = ["encode_s", "decode_s", "analysis", "latent_encode", "latent_decode", "synthesis"]
    summary = {k: statistics.mean(r[k] for r in rows) for k in keys}
    summary.update(cli_wall_time(paths[0], args.quality))
    env = {
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": str(codec.device),
        "model": codec.model_name,
        "quality": args.quality,
        "images": len(rows),
    }
    print("\nmean seconds per image:")
    for k, v in summary.items():
        print(f"  {k:15s} {v:.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": env, "mean": summary, "rows": rows}, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
