"""Probe of the overfitted family (issue 42): fit one image (or a crop) at a lambda for N
iterations, quantize the networks, REALLY code the latents and parameters (the exact
integer ARM's tables, constriction) and count every byte, check that the NumPy decoder
gives the same latents back (and time it), take the PSNR of the float decode, and put
WebP (method 6) and AVIF (4:4:4, speed 4) at the same rate on the same pixels beside it.

    python benchmarks/overfit_probe.py --images kodim01 --lmbda 0.004 --iterations 1500
    python benchmarks/overfit_probe.py --crop 384x256 --images kodim01,kodim02 \\
        --lmbda 0.002,0.008 --out benchmarks/results/overfit-probe/crops.json
    python benchmarks/overfit_probe.py --speed --crop 384x256   # s/iteration: fp32/bf16,
                                                                # torch.compile or not
    python benchmarks/overfit_probe.py --crop 384x256 --recode OLD.json --save-models DIR \
        --out NEW.json      # earlier fits coded again with the current tables

Results are saved after every run and a rerun with the same --out skips the runs already
there (same image, crop, lambda, iterations, options). Timings are only as quiet as the
machine: say what else ran.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, features  # noqa: E402

from benchmarks._inputs import KODAK  # noqa: E402
from benchmarks._report import save_json  # noqa: E402
from neuralcodec.families.overfitted.architecture import DEFAULT  # noqa: E402
from neuralcodec.families.overfitted.arm_int import integer_arm  # noqa: E402
from neuralcodec.families.overfitted.coding import decode_model_latents, encode_model  # noqa: E402
from neuralcodec.families.overfitted.fit import (  # noqa: E402
    FitOptions,
    evaluate,
    fit,
    image_tensor,
    integer_latents,
    quantize_networks,
    quantized_parameters,
)
from neuralcodec.families.overfitted.latent_codec import (  # noqa: E402
    Layout,
    decode_latents,
    encode_latents,
)
from neuralcodec.metrics import psnr  # noqa: E402


def load(name: str, folder: Path, crop: tuple[int, int] | None) -> np.ndarray:
    image = np.asarray(Image.open(folder / f"{name}.png").convert("RGB"))
    m = DEFAULT.pad_multiple
    w, h = crop if crop else (image.shape[1] // m * m, image.shape[0] // m * m)
    top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    return np.ascontiguousarray(image[top:top + h, left:left + w])


def classical_at(image: np.ndarray, fmt: str, options: dict, qualities, bpp: float) -> dict:
    """The codec's PSNR at ``bpp``: interpolated linearly in log(bpp) over a quality sweep."""
    points = []
    source = Image.fromarray(image)
    for q in qualities:
        buffer = io.BytesIO()
        source.save(buffer, format=fmt, quality=int(q), **options)
        buffer.seek(0)
        decoded = np.asarray(Image.open(buffer).convert("RGB"))
        points.append((8 * buffer.getbuffer().nbytes / (image.shape[0] * image.shape[1]),
                       psnr(image, decoded)))
    points.sort()
    rates = np.log([p[0] for p in points])
    if not rates[0] <= math.log(bpp) <= rates[-1]:
        return {"psnr": None, "range_bpp": [points[0][0], points[-1][0]]}
    return {"psnr": float(np.interp(math.log(bpp), rates, [p[1] for p in points]))}


def probe(image: np.ndarray, options: FitOptions, log, save: Path | None) -> dict:
    start = time.perf_counter()

    def progress(it: int, total: int, info: dict) -> None:
        log(f"  {it}/{total} loss {info['loss']:.5f} est {info['bpp']:.4f} bpp "
            f"{info['psnr']:.2f} dB {info['seconds']:.0f} s")

    model = fit(image, options, progress=progress, progress_every=max(1, options.iterations // 20))
    fit_s = time.perf_counter() - start
    target = image_tensor(image)
    pixels = image.shape[0] * image.shape[1]
    mse_float, bits_float = evaluate(model, target)
    t0 = time.perf_counter()
    steps = quantize_networks(model, image, options.lmbda)
    search_s = time.perf_counter() - t0
    mse_q, bits_q = evaluate(model, target)
    params = quantized_parameters(model, steps)
    latents = integer_latents(model)
    t0 = time.perf_counter()
    coded = encode_model(DEFAULT, latents, params, steps)
    code_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    back_params, back_latents = decode_model_latents(DEFAULT, coded, *image.shape[:2])
    decode_s = time.perf_counter() - t0
    exact = all((a == b).all() for a, b in zip(latents, back_latents, strict=True)) and all(
        (back_params[n][0] == params[n][0]).all() for n in params)
    # The decoder's time at twice the size (a 384x256 crop's latents tiled 2x2 are a
    # Kodak-sized pyramid with this image's statistics).
    tiled = [np.tile(g, (2, 2)) for g in latents]
    layout = Layout.build(DEFAULT, *tiled[0].shape)
    arm = integer_arm(params, DEFAULT.arm_hidden)
    stream, escapes = encode_latents(layout, tiled, arm)
    t0 = time.perf_counter()
    decode_latents(layout, stream, iter(escapes), arm)
    decode_tiled_s = time.perf_counter() - t0
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(save, **{f"latent{i}": g for i, g in enumerate(latents)},
                            **{f"param:{n}": q for n, (q, _) in params.items()},
                            steps=np.array(list(steps.values())))
    with torch.no_grad():
        grids = [torch.from_numpy(g).float()[None, None] for g in latents]
        decoded = model.synthesize(grids).clamp(0, 1).mul(255).round().byte()
    decoded = decoded[0].permute(1, 2, 0).numpy()
    bpp = 8 * coded.num_bytes / pixels
    quality = psnr(image, decoded)
    row = {
        "lmbda": options.lmbda, "iterations": options.iterations, "bf16": options.bf16,
        "compile": options.compile, "noise": options.noise_kind, "seed": options.seed,
        "fit_s": round(fit_s, 1),
        "s_per_iteration": round(fit_s / options.iterations, 4),
        "estimated_bpp_float": bits_float / pixels,
        "psnr_float_params": -10 * math.log10(mse_float),
        "estimated_bpp_quantized": bits_q / pixels,
        "step_bits": steps, "step_search_s": round(search_s, 1),
        "bytes": coded.sizes(), "bpp": bpp, "psnr": quality,
        "latents_exact_after_decode": bool(exact),
        "encode_latents_s": round(code_s, 3), "decode_latents_numpy_s": round(decode_s, 3),
        "decode_latents_numpy_s_tiled_2x2": {"size": list(tiled[0].shape),
                                             "seconds": round(decode_tiled_s, 3)},
        "mac_per_pixel": DEFAULT.mac_per_pixel(),
    }
    row["webp_m6"] = classical_at(image, "WEBP", {"method": 6}, range(0, 101, 2), bpp)
    if features.check("avif"):
        row["avif_444_s4"] = classical_at(image, "AVIF", {"speed": 4, "subsampling": "4:4:4",
                                                          "max_threads": 1},
                                          range(0, 101, 4), bpp)
    else:
        row["avif_444_s4"] = "this Pillow has no AVIF plugin"
    return row


def recode(row: dict, saved: Path, image: np.ndarray) -> dict:
    """A saved fit coded again with the current tables (same latents and parameters, so
    the same pixels and PSNR), and the classical codecs at its new rate."""
    data = np.load(saved)
    steps = dict(zip(DEFAULT.parameter_groups, data["steps"].tolist(), strict=True))
    params = {name: (data[f"param:{name}"], steps[group])
              for name, (_, group) in DEFAULT.parameter_layout().items()}
    latents = [data[f"latent{i}"] for i in range(DEFAULT.levels)]
    coded = encode_model(DEFAULT, latents, params, steps)
    bpp = 8 * coded.num_bytes / (image.shape[0] * image.shape[1])
    out = {"image": row["image"], "lmbda": row["lmbda"], "iterations": row["iterations"],
           "bytes_before": row["bytes"], "bytes": coded.sizes(), "bpp": bpp,
           "psnr": row["psnr"],
           "webp_m6": classical_at(image, "WEBP", {"method": 6}, range(0, 101, 2), bpp)}
    if features.check("avif"):
        out["avif_444_s4"] = classical_at(image, "AVIF", {"speed": 4, "subsampling": "4:4:4",
                                                          "max_threads": 1},
                                          range(0, 101, 4), bpp)
    return out


def _recorder(marks: dict[int, float]):
    def record(it: int, total: int, info: dict) -> None:
        marks[it] = info["seconds"]
    return record


def speed(image: np.ndarray, iterations: int, log) -> list[dict]:
    rows = []
    for bf16 in (False, True):
        for compiled in (False, True):
            marks: dict[int, float] = {}
            options = FitOptions(lmbda=0.004, iterations=iterations, bf16=bf16,
                                 compile=compiled)
            t0 = time.perf_counter()
            try:
                fit(image, options, progress=_recorder(marks), progress_every=1)
            except Exception as exc:  # torch.compile's failures are results here
                rows.append({"bf16": bf16, "compile": compiled,
                             "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"})
                log(json.dumps(rows[-1]))
                continue
            first = 10
            rows.append({"bf16": bf16, "compile": compiled,
                         "s_per_iteration": (marks[iterations] - marks[first])
                         / (iterations - first),
                         "first_iterations_s": marks[first],
                         "total_s": time.perf_counter() - t0})
            log(json.dumps(rows[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, default=KODAK)
    parser.add_argument("--images", default="kodim01")
    parser.add_argument("--crop", default=None, help="WxH from the centre (default: whole)")
    parser.add_argument("--lmbda", default="0.004")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--noise", default="gaussian", choices=("gaussian", "kumaraswamy"))
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--speed", action="store_true", help="only time iterations")
    parser.add_argument("--recode", type=Path, default=None,
                        help="code the fits of this earlier result again (their .npz in "
                             "--save-models) with the current tables; no fitting")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--save-models", type=Path, default=None,
                        help="folder for each fit's integer latents and parameters (.npz)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    crop = tuple(int(v) for v in args.crop.split("x")) if args.crop else None

    def log(text: str) -> None:
        print(text, flush=True)

    result = {"command": "python benchmarks/overfit_probe.py " + " ".join(sys.argv[1:]),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch "
                         f"{torch.__version__}, {args.threads} threads",
              "date": time.strftime("%Y-%m-%d"), "runs": []}
    if args.out and args.out.exists():
        result["runs"] = json.loads(args.out.read_text())["runs"]
    if args.recode:
        for row in json.loads(args.recode.read_text())["runs"]:
            image = load(row["image"], args.folder, crop)
            saved = args.save_models / (f"{row['image']}-{image.shape[1]}x{image.shape[0]}-"
                                        f"{row['lmbda']}-{row['iterations']}.npz")
            result["runs"].append(recode(row, saved, image))
            log(json.dumps(result["runs"][-1]))
        if args.out:
            save_json(result, args.out)
        return
    for name in args.images.split(","):
        image = load(name, args.folder, crop)
        if args.speed:
            result["runs"].append({"image": name, "size": list(image.shape[:2]),
                                   "speed": speed(image, args.iterations, log)})
            continue
        for lmbda in (float(v) for v in args.lmbda.split(",")):
            options = FitOptions(lmbda=lmbda, iterations=args.iterations, bf16=args.bf16,
                                 compile=args.compile, noise_kind=args.noise)
            key = {"image": name, "size": list(image.shape[:2]), "lmbda": lmbda,
                   "iterations": args.iterations, "bf16": args.bf16,
                   "compile": args.compile, "noise": args.noise}
            if any(all(r.get(k) == v for k, v in key.items()) for r in result["runs"]):
                log(f"{name} lambda {lmbda}: done before")
                continue
            log(f"{name} {image.shape[1]}x{image.shape[0]} lambda {lmbda}")
            save = (args.save_models / f"{name}-{image.shape[1]}x{image.shape[0]}-{lmbda}-"
                    f"{args.iterations}.npz") if args.save_models else None
            row = {"image": name, "size": list(image.shape[:2]), **probe(image, options, log, save)}
            log(json.dumps(row))
            result["runs"].append(row)
            if args.out:
                save_json(result, args.out)
    if args.out:
        save_json(result, args.out)


if __name__ == "__main__":
    main()
