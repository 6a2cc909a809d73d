"""Aggregates, Bjøntegaard deltas and output files of ``aec bench``.

Curves are aggregated the way published Kodak results are: per codec and setting, the
mean over images of bpp, PSNR and MS-SSIM (MS-SSIM in dB, −10·log10(1 − MS-SSIM), is taken
of the mean). BD-rates use :func:`neuralcodec.metrics.bd_rate` (PCHIP on log-rate over the
overlapping quality range) for every ordered pair of curves, for PSNR and MS-SSIM (dB).
The lossless / near-lossless codecs are not curves but a table: mean bpp per codec and
error bound K.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from .stage_timing import speed_markdown

REFERENCE_FILE = Path(__file__).parent.parent / "reference" / "kodak-compressai.json"
KODAK_NAMES = frozenset(f"kodim{i:02d}.png" for i in range(1, 25))
QUALITY_METRICS = {"psnr": "RGB PSNR (dB)", "msssim_db": "MS-SSIM (dB)"}


def msssim_db(value: float | None) -> float | None:
    """MS-SSIM on a dB scale, which spreads out the values near 1 where codecs differ."""
    if value is None or not math.isfinite(value):
        return None
    return -10 * math.log10(max(1 - value, 1e-10))


def aggregate(rows: Sequence[Any]) -> dict[str, list[dict[str, Any]]]:
    """Per codec, one point per setting: means over the images."""
    groups: dict[str, dict[float, list[Any]]] = {}
    for r in rows:
        groups.setdefault(r.codec, {}).setdefault(r.setting, []).append(r)
    curves: dict[str, list[dict[str, Any]]] = {}
    for codec, by_setting in groups.items():
        points = []
        for setting, group in sorted(by_setting.items()):
            ssim = [r.msssim for r in group]
            mean_ssim = float(np.mean(ssim)) if None not in ssim else None
            megapixels = float(np.mean([r.width * r.height for r in group])) / 1e6
            encode_s = float(np.mean([r.encode_s for r in group]))
            decode_s = float(np.mean([r.decode_s for r in group]))
            points.append({
                "setting": setting,
                "images": len(group),
                "bpp": float(np.mean([r.bpp for r in group])),
                "psnr": float(np.mean([r.psnr for r in group])),
                "msssim": mean_ssim,
                "msssim_db": msssim_db(mean_ssim),
                "encode_s": encode_s,
                "decode_s": decode_s,
                "encode_mp_per_s": megapixels / encode_s if encode_s > 0 else None,
                "decode_mp_per_s": megapixels / decode_s if decode_s > 0 else None,
            })
        curves[codec] = points
    return curves


def lossless_table(rows: Sequence[Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per codec of the lossless table and per bound K (a string key, as in JSON): the
    means over images, and the largest error seen (at most K: the harness checked)."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for codec, points in aggregate(rows).items():
        worst: dict[float, int] = {}
        for r in rows:
            if r.codec == codec:
                worst[r.setting] = max(worst.get(r.setting, 0), r.max_error or 0)
        table[codec] = {f"{p['setting']:g}": {
            "images": p["images"], "bpp": p["bpp"], "psnr": p["psnr"],
            "max_error": worst[p["setting"]], "encode_s": p["encode_s"],
            "decode_s": p["decode_s"]} for p in points}
    return table


def lossless_markdown(table: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """The table as markdown: bpp per codec (rows) and K (columns), then times."""
    bounds = sorted({k for cells in table.values() for k in cells}, key=float)
    heads = ["lossless" if k == "0" else f"K = {k}" for k in bounds]
    lines = ["| codec | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(bounds)]
    for codec, cells in table.items():
        values = [f"{cells[k]['bpp']:.3f}" if k in cells else "—" for k in bounds]
        lines.append(f"| {codec} | " + " | ".join(values) + " |")
    lines += ["", "| codec | K | bpp | PSNR (dB) | largest error | encode s | decode s |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for codec, cells in table.items():
        for k, c in cells.items():
            psnr = "∞" if not math.isfinite(c["psnr"]) else f"{c['psnr']:.2f}"
            lines.append(f"| {codec} | {k} | {c['bpp']:.3f} | {psnr} | {c['max_error']} | "
                         f"{c['encode_s']:.3f} | {c['decode_s']:.3f} |")
    return lines


def reference_curves() -> dict[str, dict[str, Any]]:
    """CompressAI's published Kodak curves, in the aggregate format (with their source)."""
    data = json.loads(REFERENCE_FILE.read_text())
    curves = {}
    for name, c in data["curves"].items():
        curves[name] = {
            "source": c["source"],
            "points": [{"bpp": b, "psnr": p, "msssim": s, "msssim_db": msssim_db(s)}
                       for b, p, s in zip(c["bpp"], c["psnr"], c["ms-ssim"], strict=True)],
        }
    return curves


def bd_entry(anchor: list[dict], test: list[dict], metric: str) -> dict[str, Any]:
    """BD-rate (%) and BD-quality of ``test`` against ``anchor`` on ``metric``; an error
    message instead where the curves cannot be compared (no overlap, missing values)."""
    a = [p for p in anchor if p.get(metric) is not None]
    b = [p for p in test if p.get(metric) is not None]
    try:
        args = ([p["bpp"] for p in a], [p[metric] for p in a],
                [p["bpp"] for p in b], [p[metric] for p in b])
        return {"bd_rate_pct": metrics.bd_rate(*args), "bd_quality": metrics.bd_psnr(*args)}
    except ValueError as exc:
        return {"error": str(exc)}


def bd_matrix(curves: dict[str, list[dict]], anchors: dict[str, list[dict]] | None = None
              ) -> dict[str, list[dict[str, Any]]]:
    """Per metric: every curve (test) against every other curve or reference (anchor)."""
    anchors = curves if anchors is None else anchors
    out: dict[str, list[dict[str, Any]]] = {}
    for metric in QUALITY_METRICS:
        out[metric] = [{"test": t, "anchor": a, **bd_entry(anchors[a], curves[t], metric)}
                       for t in curves for a in anchors if t != a]
    return out


def is_kodak(image_names: Sequence[str]) -> bool:
    return set(image_names) == KODAK_NAMES


# -- files ------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """JSON has no inf/nan: write them as null (e.g. the PSNR of a lossless point)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_csv(path: Path, rows: Sequence[Any]) -> None:
    if not rows:
        return
    names = [f.name for f in fields(rows[0])]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)


def _matrix_table(entries: list[dict[str, Any]], tests: list[str], anchors: list[str]
                  ) -> list[str]:
    cell = {(e["test"], e["anchor"]): e for e in entries}
    lines = ["| test \\ anchor | " + " | ".join(anchors) + " |",
             "|---|" + "---:|" * len(anchors)]
    for t in tests:
        values = []
        for a in anchors:
            e = cell.get((t, a))
            if e is None:
                values.append("—")
            elif "error" in e:
                values.append("n/a")
            else:
                values.append(f"{e['bd_rate_pct']:+.1f} %")
        lines.append(f"| {t} | " + " | ".join(values) + " |")
    return lines


def code_label(env: dict[str, Any]) -> str:
    """Which aec code produced the results: a git commit when run from a checkout, else
    the installed version (an installed copy has no revision to name)."""
    revision = env.get("aec_revision")
    if revision:
        return f"aec code {revision}"
    return f"aec {env['versions'].get('aec')} (installed copy, no git revision)"


def summary_markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    curves = report["aggregates"]
    lines = [f"# aec bench: {len(report['images'])} image(s) from `{report['folder']}`", ""]
    machine = f"{env['device_name']}" + (f", GPU {env['gpu']}" if env.get("gpu") else ", no GPU")
    lines += [f"Device: {machine}; {env['cpu_count']} CPU(s), {env['workers']} worker "
              f"process(es) for the Pillow codecs; torch {env['versions']['torch']}, "
              f"Pillow {env['versions']['pillow']}; {code_label(env)}.", ""]
    if env.get("note"):
        lines += [f"Note: {env['note']}", ""]
    lines += ["Means over images per setting; bpp from the whole encoded file; times are "
              "seconds per image (single-threaded for the Pillow codecs)."]
    if curves:
        lines += ["", "| codec | setting | bpp | PSNR (dB) | MS-SSIM | MS-SSIM (dB) | "
                  "encode s | decode s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for codec, points in curves.items():
        for p in points:
            ssim = "n/a" if p["msssim"] is None else f"{p['msssim']:.4f}"
            ssim_db = "n/a" if p["msssim_db"] is None else f"{p['msssim_db']:.2f}"
            lines.append(f"| {codec} | {p['setting']:g} | {p['bpp']:.4f} | {p['psnr']:.2f} | "
                         f"{ssim} | {ssim_db} | {p['encode_s']:.4f} | {p['decode_s']:.4f} |")
    if report.get("lossless"):
        n = len(report["images"])
        lines += ["", f"## Lossless and near-lossless: bits per pixel, mean over {n} "
                  f"image(s)", "",
                  "Whole-file bpp; K is the largest error each sample may have (lossless: "
                  "K = 0); every file was decoded back and checked against its K.", ""]
        lines += lossless_markdown(report["lossless"])
    names = list(curves)
    for metric, label in QUALITY_METRICS.items() if curves else ():
        lines += ["", f"## BD-rate on {label} (row vs column)", "",
                  "PCHIP on log-rate over the overlapping quality range; negative: the row "
                  "codec needs fewer bits than the column codec for equal quality; n/a: the "
                  "curves do not overlap.", ""]
        lines += _matrix_table(report["bd"][metric], names, names)
        if report.get("bd_reference"):
            refs = list(report["references"])
            lines += ["", f"Against CompressAI's published Kodak curves ({label}):", ""]
            lines += _matrix_table(report["bd_reference"][metric], names, refs)
    if report.get("references") and curves:
        lines += ["", "Reference curves (dashed in the plots), from CompressAI's results "
                  "folder:", ""]
        lines += [f"- {name}: <{ref['source']}>" for name, ref in report["references"].items()]
    if report.get("speed"):
        lines += [""] + speed_markdown(report["speed"])
    return "\n".join(lines).rstrip() + "\n"


def plot(curves: dict[str, list[dict]], references: dict[str, dict], metric: str, path: Path,
         title: str, table: dict[str, dict[str, dict[str, Any]]] | None = None) -> None:
    """The curves (and references, dashed) up to 2.5 bpp, the range BD-rates use; with
    ``table``, the whole range on a log-rate axis instead, the near-lossless points of the
    table as markers."""
    import matplotlib

    matplotlib.use("Agg")  # headless: benchmark machines have no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    top = 0.0
    for codec, points in curves.items():
        pts = [p for p in points if p.get(metric) is not None and math.isfinite(p[metric])]
        if pts:
            ax.plot([p["bpp"] for p in pts], [p[metric] for p in pts], "o-", ms=3, label=codec)
            top = max(top, max(p["bpp"] for p in pts))
    for name, ref in references.items():
        pts = ref["points"]
        ax.plot([p["bpp"] for p in pts], [p[metric] for p in pts], "--", lw=1.2, label=name)
    if table is None:
        ax.set_xlim(0, min(top, 2.5) * 1.02 if top else None)  # the 0.1-2 bpp range BD uses
    else:
        from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

        ax.set_xscale("log")  # plain numbers at round rates, not powers of ten
        ax.xaxis.set_major_locator(FixedLocator([0.1, 0.25, 0.5, 1, 2, 4, 8, 16]))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        # Black markers, one shape per codec: the curves' colours are taken.
        for (codec, cells), marker in zip(table.items(), "sD^v<>phH*", strict=False):
            # lossless points have no finite PSNR
            pts = [c for c in cells.values() if math.isfinite(c.get(metric) or math.inf)]
            if pts:
                ax.plot([c["bpp"] for c in pts], [c[metric] for c in pts], marker, ms=6,
                        color="black", label=f"{codec} (K > 0)")
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel(QUALITY_METRICS[metric])
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a run of the lossless table alone has none
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(out: Path, rows: Sequence[Any], folder: Path, images: list[str],
                  settings: dict[str, Any], environment: dict[str, Any],
                  speed: dict[str, Any] | None, table_codecs: Sequence[str] = ()
                  ) -> dict[str, Any]:
    """results.json, results.csv, summary.md, rd-psnr-full.png (the whole range) and, when
    there are curves, rd-psnr.png and rd-msssim.png in ``out``; the rows of
    ``table_codecs`` make the lossless table instead of curves."""
    curves = aggregate([r for r in rows if r.codec not in table_codecs])
    table = lossless_table([r for r in rows if r.codec in table_codecs])
    references = reference_curves() if is_kodak(images) else {}
    report: dict[str, Any] = {
        "folder": str(folder),
        "images": images,
        "settings": settings,
        "environment": environment,
        "aggregates": curves,
        "lossless": table,
        "bd": bd_matrix(curves),
        "references": references,
        "bd_reference": bd_matrix(curves, {k: v["points"] for k, v in references.items()})
        if references else {},
        "speed": speed,
    }
    (out / "results.json").write_text(
        json.dumps(_finite({**report, "rows": [asdict(r) for r in rows]}), indent=1) + "\n")
    write_csv(out / "results.csv", rows)
    (out / "summary.md").write_text(summary_markdown(report))
    n = len(images)
    if curves:  # a run of the lossless table alone has no curves to draw
        plot(curves, references, "psnr", out / "rd-psnr.png", f"RGB PSNR vs rate, {n} image(s)")
        plot(curves, references, "msssim_db", out / "rd-msssim.png",
             f"MS-SSIM (dB) vs rate, {n} image(s)")
    plot(curves, references if curves else {}, "psnr", out / "rd-psnr-full.png",
         f"RGB PSNR vs rate up to lossless, {n} image(s)", table)
    return report
