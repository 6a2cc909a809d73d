"""The coding commands: encode, decode, info, models, demo."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from .. import metrics
from ..codec.options import (
    DEFAULT_MAX_TILE_PIXELS,
    DEFAULT_TILE_OVERLAP,
    DEFAULT_TILE_SIZE,
    MAX_TILE_SIZE,
    MIN_TILE_SIZE,
    QUALITY_RANGE,
    DecodeOptions,
    EncodeOptions,
    default_of,
)
from ..errors import AecError
from ..families.zoo import DEFAULT_MODEL
from ..format.container import AEC_SUFFIX
from ..format.quality import DEFAULT_QUALITY
from ..io.files import STDIO, check_new, read_bytes
from .common import (
    build,
    device_option,
    explain,
    fail,
    force_option,
    max_pixels_option,
    plan,
    quiet_notes,
    run_batch,
    threads_option,
    tile_progress,
    use_threads,
    workers_option,
    write_bytes,
)
from .dataset import dataset_options, run_dataset


@click.command()
@click.argument("inputs", nargs=-1, required=False)  # not with --files-from
@click.option("-o", "--output", help="Output file (one input) or folder (several inputs).")
@click.option("-q", "--quality", type=click.FloatRange(*QUALITY_RANGE), default=DEFAULT_QUALITY,
              show_default=True, help="Quality, higher is better (or give a target).")
@click.option("--bpp", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Target bits per pixel: the highest quality whose file fits.")
@click.option("--size", type=click.IntRange(min=1), default=None,
              help="Target file size in bytes: the highest quality whose file fits.")
@click.option("--psnr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Target RGB PSNR in dB: the smallest file that reaches it.")
@click.option("-v", "--print-psnr", is_flag=True,
              help="Also report the file's RGB PSNR against the input.")
@click.option("-e", "--effort", type=click.IntRange(min=1),
              default=default_of(EncodeOptions, "effort"), show_default=True,
              help="Encoder effort: higher levels refine the latents for each image, "
                   "for smaller files at the same quality, and encode slower (the "
                   "README's 'Encoder effort'); decoding is unchanged.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True,
              help="Model name (see 'aec models').")
@click.option("--tile-size", type=click.IntRange(MIN_TILE_SIZE, MAX_TILE_SIZE),
              default=DEFAULT_TILE_SIZE, show_default=True,
              help="Side of the independently coded square tiles, each also coding "
                   f"{DEFAULT_TILE_OVERLAP} px of its neighbours for a seamless cross-fade.")
@device_option
@max_pixels_option
@workers_option
@threads_option
@click.option("--frame", type=click.IntRange(min=0), default=None,
              help="Frame to code from an animation or multi-page file (refused otherwise).")
@force_option
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@dataset_options  # folders, --files-from, --engine ray: cli/dataset.py
def encode(inputs, output, print_psnr, workers, threads, force, quiet, dataset, **fields
           ) -> None:
    """Compress images into .aec files. An existing output is never replaced without -f;
    - reads standard input or writes standard output.

    \b
      aec encode photo.png photo.aec -q 60
      aec encode *.png -o compressed/ --bpp 0.5
      aec encode photo.png --psnr 35 -v
      aec encode photo.png photo.aec --effort 3
      cat photo.png | aec encode - > photo.aec
    """
    options = build(EncodeOptions, **fields)  # quality, targets, effort, model, ...
    if dataset.wanted(inputs):
        return run_dataset(dataset, inputs, output, options, workers=workers,
                           threads=threads, force=force, quiet=quiet,
                           measure_psnr=print_psnr)
    import numpy as np

    from ..io.images import open_image

    quiet_notes(quiet)
    use_threads(threads)
    codec = options.codec(workers)
    pairs = plan(inputs, output, AEC_SUFFIX, lambda p: Path(p).suffix.lower() == AEC_SUFFIX)

    def job(src: Path, dst: Path) -> str:
        check_new(dst, force)  # before the work, not only when writing
        t0 = time.perf_counter()
        image = open_image(src, options.max_pixels, options.frame)
        data, q = codec.encode_with(image, options, tile_progress(src, len(pairs) > 1))
        seconds = time.perf_counter() - t0
        write_bytes(dst, data, force)
        rate = metrics.bpp(len(data), *image.size)
        line = (f"{'stdin' if str(src) == STDIO else src} -> {dst}: {len(data)} bytes, "
                f"{rate:.4f} bpp, quality {q:g}, {seconds:.2f} s")
        if print_psnr:
            decoded = codec.decode(data).convert("RGB")
            score = metrics.psnr(np.asarray(image.convert("RGB")), np.asarray(decoded))
            line += f", PSNR {score:.2f} dB"
        return line

    try:
        run_batch(pairs, "encoding", job, quiet)
    finally:  # stop tile workers now: Python 3.11 can fail stopping them at exit
        codec.close()


@click.command()
@click.argument("inputs", nargs=-1, required=False)  # not with --files-from
@click.option("-o", "--output", help="Output image (one input) or folder (several inputs).")
@click.option("--format", "fmt", default=default_of(DecodeOptions, "fmt"), show_default=True,
              help="Output suffix when the output name is derived (png, webp, tif, ...).")
@click.option("--partial", is_flag=True,
              help="Decode the intact tiles of a damaged file, fill lost ones with grey and "
                   "report them (instead of failing).")
@device_option
@max_pixels_option
@click.option("--max-tile-pixels", type=click.IntRange(min=1),
              default=DEFAULT_MAX_TILE_PIXELS, show_default=True,
              help="Largest region decoded at once: a tile, or a whole untiled version-1/2 "
                   "file.")
@workers_option
@threads_option
@force_option
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@dataset_options
def decode(inputs, output, workers, threads, force, quiet, dataset, **fields) -> None:
    """Restore images from .aec files. The output format follows the suffix (PNG by
    default, or --format for standard output). An existing output is never replaced
    without -f; - reads standard input or writes standard output.

    \b
      aec decode photo.aec photo.png
      aec decode compressed/*.aec -o restored/
      aec decode - < photo.aec > photo.png
    """
    options = build(DecodeOptions, **fields)  # fmt, partial, device, limits
    if dataset.wanted(inputs):
        return run_dataset(dataset, inputs, output, options, workers=workers,
                           threads=threads, force=force, quiet=quiet)
    from ..io.images import output_format, save_image

    quiet_notes(quiet)
    use_threads(threads)
    codec = options.codec(workers)
    pairs = plan(inputs, output, options.suffix,
                 lambda p: Path(p).suffix.lower() != AEC_SUFFIX)

    def job(src: Path, dst: Path) -> str:
        fmt_out = options.pillow_format if str(dst) == STDIO else output_format(dst)
        check_new(dst, force)
        t0 = time.perf_counter()
        progress = tile_progress(src, len(pairs) > 1)
        if options.partial:
            image, report = codec.decode_partial(read_bytes(src), progress)
            if len(report.lost_tiles) == report.tiles:
                raise AecError(f"nothing could be recovered: {report}")
            if report.lost_tiles or report.problems:
                click.echo(f"aec: note: {src}: {report}", err=True)
        else:
            image = codec.decode(read_bytes(src), progress)
        seconds = time.perf_counter() - t0
        save_image(image, dst, force, fmt_out)
        return f"{src} -> {dst}: {image.width}x{image.height} {image.mode}, {seconds:.2f} s"

    try:
        run_batch(pairs, "decoding", job, quiet)
    finally:  # stop tile workers now: Python 3.11 can fail stopping them at exit
        codec.close()


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(files, as_json) -> None:
    """Show the header and chunk sizes of .aec files (no decoding)."""
    from ..format.inspect import describe

    failures = 0
    for name in files:
        try:
            facts = describe(read_bytes(Path(name)))
        except AecError as exc:
            failures += 1
            message = explain(exc)
            fail(message if message.startswith(name) else f"{name}: {message}")
            continue
        if as_json:
            click.echo(json.dumps({"file": name, **facts}))
            continue
        click.echo(f"{name}:")
        for key, value in facts.items():
            if key == "chunks":
                value = ", ".join(f"{k} {v} B" for k, v in value.items())
            elif key == "bpp":
                value = f"{value:.4f}"
            click.echo(f"  {key:15s} {value}")
    if failures:
        sys.exit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable output: one JSON object per model per line.")
def models(as_json) -> None:
    """List installed models (the package's and those in $AEC_MODEL_PATH): whether each
    is the default, frozen (shipped by aec: never changed) and what it needs to run."""
    from ..errors import torch_installed
    from ..families.base import get_family
    from ..families.shipped import file_sha256, pins_differ, shipped_model
    from ..families.zoo import DEFAULT_MODEL, available_models

    torch_here = torch_installed()
    rows = []
    for m in available_models():
        digest = file_sha256(m.weights)
        entry = shipped_model(m.name)
        problems = pins_differ(entry, digest, m.family, m.card) if entry else []
        if entry is None:
            status = "not frozen"
        elif problems:
            status = f"not the shipped {m.name}: {'; '.join(problems)}"
        else:
            status = f"frozen since {entry.since}"
        family = get_family(m.family)
        numpy = family is not None and family.runs_on_numpy
        rows.append({
            "name": m.name,
            "default": m.name == DEFAULT_MODEL,
            "family": m.family,
            "status": status,
            "frozen_since": entry.since if entry and not problems else None,
            "needs": "numpy" if numpy else "torch",
            "torch_installed": torch_here,
            "steps": m.card.get("training", {}).get("steps"),
            "fingerprint": digest[:16],
            "weights": str(m.weights),
            "summary": m.card.get("summary", ""),
        })
    if as_json:
        for r in rows:
            click.echo(json.dumps(r))
        return
    if not rows:
        fail("no models installed")
        sys.exit(1)
    here = "installed" if torch_here else "not installed"
    for r in rows:
        star = " (default)" if r["default"] else ""
        needs = (f"runs on NumPy (the torch extra, {here}, adds effort above 1 and CUDA)"
                 if r["needs"] == "numpy" else f"needs the torch extra ({here})")
        click.echo(f"{r['name']}{star}: {r['status']}; {needs}; {r['family']}, "
                   f"{r['steps']} training steps, fingerprint {r['fingerprint']}")
        if r["summary"]:
            click.echo(f"    {r['summary']}")


@click.command()
@click.option("-q", "--quality", type=click.FloatRange(*QUALITY_RANGE), default=DEFAULT_QUALITY,
              show_default=True)
@device_option
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Also write the .aec and decoded PNG into this folder.")
@force_option
def demo(quality, device, keep, force) -> None:
    """Encode and decode the bundled sample image and report size, PSNR and time."""
    import numpy as np
    from PIL import Image

    from ..codec import Codec
    from ..io.images import save_image

    sample = Path(__file__).parent.parent / "samples" / "kodim23.png"
    original = Image.open(sample).convert("RGB")
    t0 = time.perf_counter()
    codec = Codec(None, device).load()
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = codec.encode(original, quality)
    t_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    restored = codec.decode(data)
    t_dec = time.perf_counter() - t0
    quality_db = metrics.psnr(np.asarray(original), np.asarray(restored.convert("RGB")))
    w, h = original.size
    click.echo(f"sample:    {sample.name} ({w}x{h}), model {codec.model_name} on {codec.device}")
    click.echo(f"quality:   {quality:g}")
    click.echo(f"size:      {len(data)} bytes ({metrics.bpp(len(data), w, h):.4f} bpp; "
               f"PNG is {sample.stat().st_size} bytes)")
    click.echo(f"PSNR:      {quality_db:.2f} dB (RGB)")
    click.echo(f"seconds:   load {t_load:.2f}, encode {t_enc:.2f}, decode {t_dec:.2f}")
    if keep:
        folder = Path(keep)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("kodim23.aec", "kodim23.png"):  # both or neither
            check_new(folder / name, force)
        write_bytes(folder / "kodim23.aec", data, force)
        save_image(restored, folder / "kodim23.png", force)
        click.echo(f"wrote:     {folder / 'kodim23.aec'}, {folder / 'kodim23.png'}")
