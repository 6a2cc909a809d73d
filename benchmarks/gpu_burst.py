"""A GPU training burst that fits the lent GPU machine's limits, ready to fire.

The machine comes rarely and briefly (minutes of device time, 64 MiB carried per call,
files of at most 16 MiB back), so everything is prepared here:

    python benchmarks/gpu_burst.py pack            # here: .burst/ = shard + Kodak + wheels
    <device run> carry .burst:
        python3 -m pip install -q --no-index --no-deps --target /tmp/site .burst/whl/*.whl
        PYTHONPATH=/tmp/site:. python3 benchmarks/gpu_burst.py run --out $OUT
    python benchmarks/gpu_burst.py dry-run         # the same run, tiny, on CPU (CI passes
                                                   # its own --data and --kodak)

``pack`` fills what the 64 MiB leave beside the working tree with training photos
(long side at most 512, JPEG 4:4:4), taken from every source in proportion.
``run`` trains for a fixed wall time (bf16 autocast, ``torch.compile``, crops cut on the
GPU), exports the weights in the shipping format into ``OUT/models`` (one file under
16 MiB), then checks the exact integer path (encode on CUDA, decode on CPU) and runs a
quick ``aec bench`` on the carried Kodak images. ``--family channel-context`` (the
default) trains ``aec-hp-elic``, the model meant to become the default, warm-started from
aec-hp-ckbd with the transforms frozen for its first ``--freeze-transforms`` steps;
``--family hyperprior`` continues aec-hp-ckbd, its levels up to λ 0.6, as
``aec-hp-ckbd-2`` (a shipped model is frozen: new weights get a new name).
``aec train --family channel-context --init OUT/models/aec-hp-elic.safetensors`` (or
``--init OUT/models/aec-hp-ckbd-2.safetensors``) continues from the result on CPU.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not

BURST = ROOT / ".burst"
CARRY_LIMIT = 64 * 2**20  # the device tool's limit for working tree + carried paths
MARGIN = 2 * 2**20
WHEELS = ("compressai==1.2.8", "constriction==0.5.0", "pytorch-msssim==1.0.0")
SHARD_SIDE = 512
SHARD_QUALITY = 88
MODEL = "aec-hp-ckbd"  # the shipped weights every burst starts from
# What it exports: a new name, as a shipped model's weights are frozen.
TRAINED = {"channel-context": "aec-hp-elic", "hyperprior": f"{MODEL}-2"}
# Levels the hyperprior burst trains on top of older weights' (ratio ~2.25, as between the
# others): 0.27 was added by the first burst, 0.6 by phase 11 (untrained), so the burst
# trains it with the rest.
EXTRA_LAMBDAS = (0.27, 0.6)


def tree_bytes() -> int:
    """Bytes of the working tree as the device tool sends it (tracked + untracked, not
    ignored)."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.split(b"\0")
    files = [ROOT / n.decode() for n in names if n]
    return sum(f.stat().st_size for f in files if f.is_file())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def shard_order(paths: list[Path], seed: int) -> list[Path]:
    """Every source (file-name prefix) in proportion: the i-th image of a source of n
    images sorts at (i + 0.5) / n, so any prefix of the order is a balanced sample."""
    rng = random.Random(seed)
    by_source: dict[str, list[Path]] = {}
    for p in paths:
        by_source.setdefault(p.name.split("_")[0], []).append(p)
    keyed = []
    for files in by_source.values():
        rng.shuffle(files)
        keyed += [((i + 0.5) / len(files), rng.random(), p) for i, p in enumerate(files)]
    return [p for *_, p in sorted(keyed)]


def encode_for_shard(path: Path, side: int, quality: int) -> bytes:
    """The photo as training loads it (long side at most ``side``), as JPEG 4:4:4."""
    from PIL import Image

    from neuralcodec.training.data import load_rgb

    buf = io.BytesIO()
    pixels = load_rgb(path, side).permute(1, 2, 0).numpy()
    Image.fromarray(pixels, "RGB").save(buf, "JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def pack(args) -> None:
    import shutil

    from neuralcodec.training.data import list_images

    if BURST.exists():
        shutil.rmtree(BURST)
    (BURST / "whl").mkdir(parents=True)
    for spec in WHEELS:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             "--python-version", "3.12", "--implementation", "cp",
             *[f"--platform=manylinux_2_{n}_x86_64" for n in (17, 27, 28, 31, 34, 35)],
             "--platform=manylinux2014_x86_64", "-d", str(BURST / "whl"), spec],
            check=True,
        )
    kodak = BURST / "kodak"
    kodak.mkdir()
    for p in list_images([args.kodak])[: args.kodak_images]:
        shutil.copy(p, kodak / p.name)
    shard = BURST / "shard"
    shard.mkdir()
    budget = CARRY_LIMIT - MARGIN - tree_bytes() - folder_bytes(BURST)
    used = count = 0
    order = shard_order(list_images(args.data), args.seed)
    for p in order:
        data = encode_for_shard(p, SHARD_SIDE, SHARD_QUALITY)
        if used + len(data) > budget:
            continue  # a smaller image may still fit
        (shard / f"{p.stem}.jpg").write_bytes(data)
        used, count = used + len(data), count + 1
    print(f"shard: {count} of {len(order)} images, {used / 2**20:.1f} MiB; "
          f"working tree + .burst: {(tree_bytes() + folder_bytes(BURST)) / 2**20:.1f} MiB")


def integer_path_check(models: Path, name: str, kodak: Path, device: str) -> dict:
    """Encode on ``device``, decode on the CPU: the exact integer path must make every
    file decode to the latents the encoder coded (same PSNR as decoding on ``device``)."""
    import numpy as np
    from PIL import Image

    from neuralcodec.codec import Codec
    from neuralcodec.metrics import psnr
    from neuralcodec.training.data import list_images

    os.environ["AEC_MODEL_PATH"] = str(models)

    enc, cpu = Codec(name, device=device, workers=1), Codec(name, device="cpu", workers=1)
    rows = []
    for path in list_images([kodak])[:2]:
        image = Image.open(path).convert("RGB")
        pixels = np.asarray(image)
        for quality in (10.0, 75.0, 100.0):
            data = enc.encode(image, quality)
            same_bytes = data == cpu.encode(image, quality)
            rows.append({
                "image": path.name, "quality": quality, "bytes": len(data),
                "identical_to_cpu_encode": same_bytes,
                "psnr_cpu_decode": psnr(pixels, np.asarray(cpu.decode(data).convert("RGB"))),
                "psnr_device_decode": psnr(pixels, np.asarray(enc.decode(data).convert("RGB"))),
            })
    return {"device": device, "rows": rows}


def import_compressai() -> None:
    """Import compressai, or, if its package ``__init__`` fails on this machine (it
    imports its point-cloud and video data sets, with their own dependencies), make its
    entropy models and layers importable without running it."""
    try:
        import compressai  # noqa: F401
        return
    except Exception as exc:  # any failure there: those parts are never used here
        print(f"compressai's __init__ failed ({type(exc).__name__}: {exc}); "
              "importing its layers and entropy models without it", flush=True)
    import importlib.util
    import types

    for name in [n for n in sys.modules if n == "compressai" or n.startswith("compressai.")]:
        del sys.modules[name]
    spec = importlib.util.find_spec("compressai")
    package = types.ModuleType("compressai")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.get_entropy_coder = lambda: "ans"
    package.available_entropy_coders = lambda: ["ans"]
    sys.modules["compressai"] = package


def run(args) -> None:
    import_compressai()
    import torch

    t0 = time.time()
    out = Path(args.out)
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""),
          flush=True)
    run_dir = Path(args.run_dir)
    common = dict(
        data=[str(args.data)], out=str(run_dir), eval_dir=str(args.kodak),
        eval_images=args.eval_images, steps=10**9, seconds=args.seconds,
        batch_size=args.batch_size, patch=args.patch, lr=args.lr, lr_drop_at=0.85,
        warmup=args.warmup, eval_every=args.eval_every, log_every=args.log_every,
        checkpoint_every=args.eval_every, device=args.device, precision=args.precision,
        compile=not args.no_compile, channels_last=True, crops_on_device=True,
        init=MODEL, seed=args.seed,
    )
    if args.family == "channel-context":
        from neuralcodec.training.channel_context import ChannelTrainOptions, export, train

        opts = ChannelTrainOptions(**common, freeze_transforms=args.freeze_transforms)
    else:
        from neuralcodec.families.hyperprior.model import ModelConfig
        from neuralcodec.families.zoo import find_model
        from neuralcodec.training.hyperprior import TrainOptions, export, train

        lambdas = list(find_model(MODEL).card["config"]["lambdas"])
        lambdas += [v for v in EXTRA_LAMBDAS if v > lambdas[-1]]
        config = {**ModelConfig().to_dict(), "lambdas": lambdas}
        opts = TrainOptions(**common, relevel=True, config=config)
    name = TRAINED[args.family]
    train(opts, log=lambda msg: print(msg, flush=True))
    print(f"trained: {time.time() - t0:.0f} s since start", flush=True)
    for log_name in ("log.jsonl", "eval.jsonl"):
        if (run_dir / log_name).exists():
            (out / log_name).write_bytes((run_dir / log_name).read_bytes())
    card = {"training_note": f"GPU burst of {args.seconds:.0f} s, batch {args.batch_size} "
                             f"at {args.patch}x{args.patch}, {args.precision}"}
    export(run_dir, name, models, card)
    print(f"exported: {time.time() - t0:.0f} s since start", flush=True)
    check = integer_path_check(models, name, Path(args.kodak), args.device)
    (out / "integer-check.json").write_text(json.dumps(check, indent=1))
    for row in check["rows"]:
        print(f"integer path: {row['image']} q{row['quality']:.0f} {row['bytes']} B "
              f"same bytes as CPU encode: {row['identical_to_cpu_encode']}  PSNR CPU decode "
              f"{row['psnr_cpu_decode']:.3f} / {args.device} decode "
              f"{row['psnr_device_decode']:.3f}", flush=True)
    if not args.no_bench:
        bench_dir = run_dir / "bench"
        subprocess.run(
            [sys.executable, "-m", "neuralcodec", "bench", str(args.kodak), "--codecs", "aec",
             "--models", name, "--device", args.device, "--out", str(bench_dir), "--no-speed",
             "--workers", str(args.bench_workers)],
            check=False, env={**os.environ, "AEC_MODEL_PATH": str(models)},
        )  # a failed bench must not lose the weights already written
        if (bench_dir / "summary.md").exists():
            (out / "bench-summary.md").write_bytes((bench_dir / "summary.md").read_bytes())
    print(f"done: {time.time() - t0:.0f} s since start", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="build .burst/ (shard, Kodak images, wheels)")
    p.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared/datasets/train")])
    p.add_argument("--kodak", default=str(ROOT.parent / "shared/datasets/kodak"))
    p.add_argument("--kodak-images", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    for name, defaults in (("run", {}), ("dry-run", {
        "seconds": 30.0, "batch_size": 2, "patch": 64, "device": "cpu", "eval_every": 5,
        "log_every": 1, "warmup": 2, "bench_workers": 1, "no_compile": True})):
        p = sub.add_parser(name, help="train on the GPU" if name == "run"
                           else "the same run, tiny, on the CPU (what CI runs)")
        p.add_argument("--out", default=os.environ.get("OUT", "burst-out"))
        p.add_argument("--run-dir", default="/tmp/aec-burst/run")
        p.add_argument("--data", default=str(BURST / "shard"))
        p.add_argument("--kodak", default=str(BURST / "kodak"))
        p.add_argument("--seconds", type=float, default=460.0,
                       help="training wall time, compilation and data loading included")
        p.add_argument("--batch-size", type=int, default=32)
        p.add_argument("--patch", type=int, default=256)
        p.add_argument("--lr", type=float, default=1e-4)
        p.add_argument("--warmup", type=int, default=300)
        p.add_argument("--eval-every", type=int, default=2000)
        p.add_argument("--eval-images", type=int, default=4)
        p.add_argument("--log-every", type=int, default=100)
        p.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
        p.add_argument("--no-compile", action="store_true")
        p.add_argument("--no-bench", action="store_true")
        p.add_argument("--bench-workers", type=int, default=8)
        p.add_argument("--device", default="cuda")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--family", choices=sorted(TRAINED), default="channel-context")
        p.add_argument("--freeze-transforms", type=int, default=1500,
                       help="channel-context: steps with the copied transforms frozen")
        p.set_defaults(**defaults)
    args = parser.parse_args(argv)
    {"pack": pack, "run": run, "dry-run": run}[args.command](args)


if __name__ == "__main__":
    main()
