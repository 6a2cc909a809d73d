"""Research probe for issue 41's residual layer: how many bits the residual ``x - x̂`` of
the learned codec's reconstruction costs under several probability models, and the total
with the base file, per base quality and maximum error K.

Three steps, each cached under ``--cache`` so later steps re-use earlier ones:

    python benchmarks/residual_probe.py bases --set train --count 160   # base layers
    python benchmarks/residual_probe.py bases --set kodak
    python benchmarks/residual_probe.py fit                             # fit on train
    python benchmarks/residual_probe.py code --limit 4                  # real bytes, Kodak

``bases`` encodes each image at every ``--qualities`` with the default model (NumPy, CPU)
and keeps the file size and the float reconstruction. The train set is random crops of
``../shared/datasets/train`` after a random downscale in [0.5, 1] (which removes most JPEG
artefacts); Kodak is only ever coded, never fitted on. ``fit`` fits the context models of
:mod:`neuralcodec.residual` on the train set. ``code`` range-codes every Kodak residual with
constriction under each model and reports real bytes: total bpp = base file + residual.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

import neuralcodec  # noqa: E402, F401  (first: it names the BLAS's kernels before NumPy loads)
from benchmarks._inputs import KODAK  # noqa: E402
from benchmarks._report import save_json  # noqa: E402
from neuralcodec.residual import coder  # noqa: E402
from neuralcodec.residual.context import (  # noqa: E402
    SCHEDULES,
    Features,
    Pass,
    Schedule,
    passes,
)
from neuralcodec.residual.model import LEAK, MEAN_UNIT, PassNet, ResidualModel  # noqa: E402
from neuralcodec.residual.quantize import quantize, restore, step  # noqa: E402
from neuralcodec.residual.tables import bin_probability, build_tables  # noqa: E402

TRAIN = KODAK.parent / "train"
QUALITIES = (0, 20, 40, 70, 100)
MAX_ERRORS = (0, 1, 2, 4)
CROP = 256


# -- base layers ---------------------------------------------------------------------------

def train_crops(count: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """``count`` random crops of the train set, each after a random downscale."""
    from PIL import Image

    files = sorted(p for p in TRAIN.glob("pack-*/*") if p.is_file())
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(files), size=min(count, len(files)), replace=False)
    crops = []
    for i in sorted(chosen.tolist()):
        image = Image.open(files[i]).convert("RGB")
        scale = rng.uniform(0.5, 1.0)
        size = (max(CROP, round(image.width * scale)), max(CROP, round(image.height * scale)))
        image = image.resize(size, Image.LANCZOS)
        left = int(rng.integers(0, image.width - CROP + 1))
        top = int(rng.integers(0, image.height - CROP + 1))
        crops.append((files[i].stem, np.asarray(image.crop((left, top, left + CROP,
                                                            top + CROP)))))
    return crops


def kodak_images(limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    from PIL import Image

    paths = sorted(KODAK.glob("*.png"))[:limit]
    return [(p.stem, np.asarray(Image.open(p).convert("RGB"))) for p in paths]


def make_bases(images: list[tuple[str, np.ndarray]], qualities: list[int], folder: Path
               ) -> None:
    """Encode each image at each quality; save the image, every reconstruction (the exact
    synthesis's pixels) and every file size as one ``.npz`` per image (skipped when it
    exists)."""
    from PIL import Image

    from neuralcodec.codec.codec import rate_point
    from neuralcodec.families.hyperprior.exact_synthesis import ExactSynthesis

    codec = neuralcodec.Codec(device="cpu", workers=1).load()
    exact = ExactSynthesis.of_model(codec.coder().info)
    folder.mkdir(parents=True, exist_ok=True)
    for name, x in images:
        out = folder / f"{name}.npz"
        if out.exists():
            continue
        arrays: dict[str, np.ndarray] = {"x": x}
        prepared = codec.prepare(Image.fromarray(x))
        for q in qualities:
            data = codec.encode_prepared(prepared, q)
            # The exact synthesis's pixels: what the residual layer is coded against.
            header, latents = codec.decode_latents(data)
            recon = exact(latents.y_hat, rate_point(header.quality))
            arrays[f"recon{q}"] = recon[:x.shape[0], :x.shape[1]]
            arrays[f"bytes{q}"] = np.array(len(data))
        np.savez_compressed(out.with_suffix(".tmp.npz"), **arrays)
        out.with_suffix(".tmp.npz").rename(out)
        print(name, " ".join(f"q{q} {8 * int(arrays[f'bytes{q}']) / x.shape[0] / x.shape[1]:.3f}"
                             for q in qualities), flush=True)


def load_bases(folder: Path, limit: int | None = None) -> list[dict[str, np.ndarray]]:
    paths = sorted(folder.glob("*.npz"))
    paths = [p for p in paths if not p.name.endswith(".tmp.npz")][:limit]
    out = []
    for p in paths:
        with np.load(p) as f:
            one = {k: f[k] for k in f.files}
        one["name"] = p.stem
        out.append(one)
    return out


# -- fitting ---------------------------------------------------------------------------

def training_rows(bases: list[dict[str, np.ndarray]], qualities: list[int],
                  max_errors: list[int], per_pass: int, schedule: Schedule,
                  xhat_radius: int = 1, seed: int = 1) -> dict[Pass, dict[str, np.ndarray]]:
    """Per pass: sampled feature rows, their symbols and steps, from every base layer at
    every quality and maximum error (``per_pass`` positions per pass and combination)."""
    rng = np.random.default_rng(seed)
    rows: dict[Pass, dict[str, list[np.ndarray]]] = {}
    for base in bases:
        x = base["x"]
        for q in qualities:
            xhat = base[f"recon{q}"]
            residual = x.astype(np.int32) - xhat.astype(np.int32)
            for k in max_errors:
                delta = step(k)
                symbols = quantize(residual, k)
                features = Features(xhat, q, delta, xhat_radius)
                decoded = symbols.astype(np.float32) * delta
                for p in passes(3, schedule):
                    f = features(p, decoded)
                    r, c = p.positions(xhat.shape[:2])
                    sym = symbols[r, c, p.channel].ravel()
                    pick = rng.choice(len(sym), size=min(per_pass, len(sym)), replace=False)
                    one = rows.setdefault(p, {"f": [], "q": [], "d": []})
                    one["f"].append(f[pick])
                    one["q"].append(sym[pick])
                    one["d"].append(np.full(len(pick), delta, np.float32))
    return {p: {k: np.concatenate(v) for k, v in one.items()} for p, one in rows.items()}


def fit_linear(rows: dict[str, np.ndarray], with_mean: bool = True) -> PassNet:
    """Least squares: the mean on the features, then the log of the error's magnitude on
    them, shifted by the constant that minimises the bits on these rows."""
    f, q, d = rows["f"], rows["q"].astype(np.float64), rows["d"].astype(np.float64)
    a = np.column_stack([f, np.ones(len(f))])
    target = q * d
    coef = (np.linalg.lstsq(a, target / MEAN_UNIT, rcond=None)[0] if with_mean
            else np.zeros(a.shape[1]))
    mean = a @ coef * MEAN_UNIT
    log_error = np.log(np.abs(target - mean) + 0.5 * d)
    scale_coef = np.linalg.lstsq(a, log_error, rcond=None)[0]
    log_scale = a @ scale_coef
    shifts = np.linspace(-1.5, 0.5, 41)
    bits = [-np.log2(bin_probability(q, mean / d, np.exp(log_scale + s) / d)).sum()
            for s in shifts]
    scale_coef[-1] += shifts[int(np.argmin(bits))]
    w = np.stack([coef[:-1], scale_coef[:-1]], axis=1).astype(np.float32)
    b = np.array([coef[-1], scale_coef[-1]], np.float32)
    return PassNet([w], [b])


def fit_mlp(rows: dict[str, np.ndarray], hidden: list[int], steps: int, init: PassNet,
            batch: int = 1024, seed: int = 0) -> PassNet:
    """A LeakyReLU MLP trained on the discretized logistic's bits (Adam, torch on the CPU);
    its output layer starts from the linear fit's (a skip path) so it starts no worse."""
    import torch

    torch.set_num_threads(1)  # a shared 2-core machine; small batches gain little from more
    torch.manual_seed(seed)
    f = torch.from_numpy(rows["f"])
    q = torch.from_numpy(rows["q"].astype(np.float32))
    d = torch.from_numpy(rows["d"])
    sizes = [f.shape[1], *hidden, 2]
    layers = [torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    skip = torch.nn.Linear(f.shape[1], 2)
    with torch.no_grad():
        skip.weight.copy_(torch.from_numpy(init.weights[0].T))
        skip.bias.copy_(torch.from_numpy(init.biases[0]))
        layers[-1].weight.mul_(0.1)
        layers[-1].bias.zero_()
    params = [p for m in [*layers, skip] for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, layer in enumerate(layers):
            h = layer(h)
            if i < len(layers) - 1:
                h = torch.nn.functional.leaky_relu(h, LEAK)
        return h + skip(x)

    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(f), (batch,), generator=gen)
        out = forward(f[idx])
        mean = out[:, 0] * MEAN_UNIT / d[idx]
        scale = torch.exp(out[:, 1].clamp(-4, 6)) / d[idx]
        upper = torch.sigmoid((q[idx] + 0.5 - mean) / scale)
        lower = torch.sigmoid((q[idx] - 0.5 - mean) / scale)
        loss = -torch.log2((upper - lower).clamp_min(1e-9)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    weights = [layer.weight.detach().numpy().T.copy() for layer in layers]
    biases = [layer.bias.detach().numpy().copy() for layer in layers]
    return PassNet(weights, biases,
                   (skip.weight.detach().numpy().T.copy(), skip.bias.detach().numpy().copy()))


def fit(cache: Path, qualities: list[int], max_errors: list[int], args: argparse.Namespace
        ) -> None:
    """Fit the scale-only, linear and MLP models on the train bases; save each as .npz."""
    bases = load_bases(cache / "train")
    if not bases:
        raise SystemExit("no train bases: run the 'bases --set train' step first")
    start = time.perf_counter()
    schedule = SCHEDULES[args.schedule]
    rows = training_rows(bases, qualities, max_errors, args.per_pass, schedule,
                         args.xhat_radius)
    print(f"{len(bases)} train crops, {sum(len(r['q']) for r in rows.values())} rows "
          f"({time.perf_counter() - start:.0f} s)", flush=True)
    hidden = [int(h) for h in args.hidden.split(",") if h]
    models = {name: ResidualModel(schedule, xhat_radius=args.xhat_radius)
              for name in ("scale-only", "linear", "mlp")}
    for p, one in rows.items():
        models["scale-only"].nets[p] = fit_linear(one, with_mean=False)
        models["linear"].nets[p] = fit_linear(one)
        models["mlp"].nets[p] = fit_mlp(one, hidden, args.steps, models["linear"].nets[p],
                                        args.batch)
        f, q, d = one["f"], one["q"], one["d"]
        report = []
        for name, model in models.items():
            mean, scale = model.nets[p](f)
            bits = -np.log2(bin_probability(q, mean / d, scale / d)).mean()
            report.append(f"{name} {bits:.3f}")
        print(f"c{p.channel} p{p.phase} ({f.shape[1]} features): bits/symbol on train rows: "
              + ", ".join(report), flush=True)
    for name, model in models.items():
        np.savez(cache / f"model-{name}-{args.schedule}{args.tag}.npz", **model.arrays())
    print(f"fitted in {time.perf_counter() - start:.0f} s")


def code(cache: Path, qualities: list[int], max_errors: list[int], args: argparse.Namespace
         ) -> None:
    """Range-code every Kodak residual under each model: real bytes and the total bpp."""
    names = args.models.split(",")  # e.g. mlp-2x2
    models = {}
    for name in names:
        with np.load(cache / f"model-{name}.npz") as f:
            models[name] = ResidualModel.from_arrays({k: f[k] for k in f.files})
    tables = build_tables()
    bases = load_bases(cache / "kodak", args.limit)
    per_image: dict[str, dict] = {}
    for base in bases:
        x = base["x"]
        pixels = x.shape[0] * x.shape[1]
        one: dict[str, dict] = {}
        for q in qualities:
            xhat = base[f"recon{q}"]
            residual = x.astype(np.int32) - xhat.astype(np.int32)
            base_bpp = 8 * int(base[f"bytes{q}"]) / pixels
            for k in max_errors:
                symbols = quantize(residual, k)
                for name, model in models.items():
                    start = time.perf_counter()
                    stream, escapes = coder.encode(xhat, symbols, q, k, model, tables)
                    seconds = time.perf_counter() - start
                    entry = {
                        "base_bpp": base_bpp,
                        "residual_bpp": 8 * (len(stream) + len(escapes)) / pixels,
                        "encode_s": seconds,
                    }
                    if args.ideal:
                        entry["ideal_bpp"] = coder.ideal_bits(xhat, symbols, q, k, model) / pixels
                    entry["total_bpp"] = entry["base_bpp"] + entry["residual_bpp"]
                    if args.check_decode:
                        start, cpu = time.perf_counter(), time.process_time()
                        back = coder.decode(xhat, stream, escapes, q, k, model, tables)
                        entry["decode_s"] = time.perf_counter() - start
                        entry["decode_cpu_s"] = time.process_time() - cpu
                        out = restore(xhat, back, k)
                        error = int(np.abs(out.astype(np.int16) - x.astype(np.int16)).max())
                        if not np.array_equal(back, symbols) or error > k:
                            raise SystemExit(f"{base['name']} q{q} K{k} {name}: decode differs")
                    one[f"q{q}/K{k}/{name}"] = entry
            print(base["name"], f"q{q}", " ".join(
                f"K{k}:" + "/".join(f"{one[f'q{q}/K{k}/{n}']['total_bpp']:.3f}" for n in names)
                for k in max_errors), flush=True)
        per_image[base["name"]] = one
    keys = list(next(iter(per_image.values())))
    mean = {key: {field: float(np.mean([per_image[i][key][field] for i in per_image]))
                  for field in per_image[next(iter(per_image))][key]} for key in keys}
    # The encoder picks the base quality per image: the mean of each image's best total.
    best = {f"K{k}/{n}": float(np.mean([min(per_image[i][f"q{q}/K{k}/{n}"]["total_bpp"]
                                            for q in qualities) for i in per_image]))
            for k in max_errors for n in names}
    result = {"what": "base file + range-coded residual, bits per pixel, Kodak",
              "images": len(per_image), "models": names, "note": args.note,
              "mean": mean, "mean_of_best_quality_per_image": best, "per_image": per_image}
    if args.save:
        save_json(result, Path(args.save))
    print(f"\nmean total bpp over {len(per_image)} images ({' / '.join(names)})")
    for k in max_errors:
        row = []
        for q in qualities:
            row.append(f"q{q} " + "/".join(f"{mean[f'q{q}/K{k}/{n}']['total_bpp']:.3f}"
                                          for n in names))
        print(f"K={k}: " + "   ".join(row) + "   best q per image "
              + "/".join(f"{best[f'K{k}/{n}']:.3f}" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["bases", "fit", "code"])
    parser.add_argument("--cache", default="/tmp/aec-residual")
    parser.add_argument("--set", choices=["train", "kodak"], default="kodak")
    parser.add_argument("--count", type=int, default=160, help="train crops")
    parser.add_argument("--limit", type=int, default=None, help="only the first N Kodak images")
    parser.add_argument("--qualities", default=",".join(map(str, QUALITIES)))
    parser.add_argument("--max-errors", default=",".join(map(str, MAX_ERRORS)))
    parser.add_argument("--per-pass", type=int, default=384,
                        help="fit: sampled positions per pass, base layer, quality and K")
    parser.add_argument("--hidden", default="32,32", help="fit: the MLP's hidden widths")
    parser.add_argument("--steps", type=int, default=2000, help="fit: Adam steps per pass")
    parser.add_argument("--xhat-radius", type=int, choices=[1, 2], default=1,
                        help="fit: x̂ in 3×3 (1) or 5×5 and the other channels' 3×3 (2)")
    parser.add_argument("--tag", default="", help="fit: appended to the model files' names")
    parser.add_argument("--batch", type=int, default=1024, help="fit: rows per Adam step")
    parser.add_argument("--schedule", choices=sorted(SCHEDULES), default="2x2",
                        help="fit: the decoding passes")
    parser.add_argument("--models", default="scale-only-2x2,linear-2x2,mlp-2x2",
                        help="code: the fitted models to code with")
    parser.add_argument("--ideal", action="store_true",
                        help="code: also the bits of the unquantized distributions")
    parser.add_argument("--check-decode", action="store_true",
                        help="code: decode every file back (and time it)")
    parser.add_argument("--save", default=None)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    cache = Path(args.cache)
    qualities = [int(q) for q in args.qualities.split(",")]
    max_errors = [int(k) for k in args.max_errors.split(",")]

    if args.step == "bases":
        images = (train_crops(args.count) if args.set == "train" else kodak_images(args.limit))
        make_bases(images, qualities, cache / args.set)
    elif args.step == "fit":
        fit(cache, qualities, max_errors, args)
    else:
        code(cache, qualities, max_errors, args)


if __name__ == "__main__":
    main()
