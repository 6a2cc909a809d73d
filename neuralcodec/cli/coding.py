"""The coding commands: encode, decode, info, models, demo."""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import click

from .. import metrics
from ..codec.options import (
    DEFAULT_MAX_TILE_PIXELS,
    DEFAULT_TILE_OVERLAP,
    DEFAULT_TILE_SIZE,
    MAX_ERROR_RANGE,
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
from ..format.inspect import residual_max_error
from ..format.quality import DEFAULT_QUALITY
from ..io.files import STDIO, STDOUT_NAME, read_bytes
from ..io.lossy import (
    DEFAULT_OUTPUT_QUALITY,
    LOSSLESS_WEBP,
    OUTPUT_QUALITY_RANGE,
    quality_formats,
)
from .common import (
    build,
    candidate_progress,
    checked,
    device_option,
    explain,
    fail,
    fit_progress,
    force_option,
    given,
    max_pixels_option,
    plan,
    plan_outputs,
    quiet_notes,
    run_one,
    say,
    threads_option,
    tile_progress,
    use_threads,
    workers_option,
    write_bytes,
)
from .dataset import dataset_options, run_dataset, run_list


@click.command(short_help="Compress images into .aec files.")
@click.argument("inputs", nargs=-1, required=False)  # not with --files-from
@click.option("-o", "--output", help="Output file (one input) or folder (several inputs).")
@click.option("-q", "--quality", type=click.FloatRange(*QUALITY_RANGE), default=DEFAULT_QUALITY,
              show_default=True, help="Quality, higher is better (or give a target).")
@click.option("--bpp", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Target bits per pixel: the highest quality whose file fits.")
@click.option("--size", type=click.IntRange(min=1), default=None,
              help="Target file size in bytes: the highest quality whose file fits.")
@click.option("--psnr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Target RGB PSNR in dB: the smallest file that reaches it (above "
                   "what quality 100 reaches, with the residual layer of the largest "
                   "maximum error that does).")
@click.option("--lossless", is_flag=True,
              help="Add the residual layer so that the file decodes to exactly the input "
                   "(--max-error 0).")
@click.option("--max-error", type=click.IntRange(*MAX_ERROR_RANGE), default=None,
              help="Add the residual layer so that no decoded sample is more than this "
                   "many levels from the input; -q then fixes the base layer's quality "
                   "(else the smallest file of 55, 70 and 85).")
@click.option("-v", "--verbose", "--print-psnr", "verbose", is_flag=True,
              help="Also report each file's RGB PSNR against the image coded (the input "
                   "after any conversion its notes announce); with several files, a line "
                   "per file.")
@click.option("-e", "--effort", type=click.IntRange(min=1),
              default=default_of(EncodeOptions, "effort"), show_default=True,
              help="Encoder effort: higher levels refine the latents for each image, "
                   "for smaller files at the same quality, and encode slower (the "
                   "README's 'Encoder effort'); decoding is unchanged. aec-of fits every "
                   "image: 1, 2, 3 are fits of 1,000, 3,000 and 10,000 iterations, about "
                   "6, 18 and 60 minutes per Kodak image on one CPU core "
                   "(docs/overfitted.md).")
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
@click.option("--strip", is_flag=True,
              help="Drop EXIF (GPS, camera, dates) and XMP; the ICC profile is kept.")
@force_option
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@dataset_options  # folders, --files-from, --engine ray: cli/dataset.py
def encode(inputs, output, verbose, workers, threads, force, quiet, dataset, **fields
           ) -> None:
    """Compress images into .aec files. An existing output is never replaced without -f;
    with several files, one that is already what was asked is skipped (a rerun resumes).
    - reads standard input or writes standard output.

    \b
      aec encode photo.png photo.aec -q 60
      aec encode *.png -o compressed/ --bpp 0.5
      aec encode photo.png --psnr 35 -v
      aec encode photo.png photo.aec --effort 3
      aec encode photo.png photo.aec --lossless
      aec encode photo.png photo.aec --max-error 2 -v
      cat photo.png | aec encode - > photo.aec
    """
    options = build(EncodeOptions, **fields)  # quality, targets, effort, model, ...
    if dataset.wanted(inputs):
        return run_dataset(dataset, inputs, output, options, workers=workers,
                           threads=threads, force=force, quiet=quiet, verbose=verbose)
    pairs = plan(inputs, output, AEC_SUFFIX, lambda p: Path(p).suffix.lower() == AEC_SUFFIX,
                 force)
    if len(pairs) > 1:
        return run_list(pairs, options, workers=workers, threads=threads, force=force,
                        quiet=quiet, verbose=verbose)
    from ..datasets.manifest import DONE, Row

    quiet_notes(quiet)
    use_threads(threads)
    codec = options.codec(workers)
    [(src, dst)] = pairs

    def job() -> Row:
        coder = codec.load().coder()
        if hasattr(coder, "fit_progress") and not quiet:  # a family that fits each image
            coder.fit_progress = fit_progress(src)
        t0 = time.perf_counter()
        prepared = codec.prepare(src, options.frame, options.residual_error is not None)
        data, q = codec.encode_with(prepared, options, tile_progress(src),
                                    candidate_progress(src))
        seconds = time.perf_counter() - t0
        write_bytes(dst, data, force)
        w, h = prepared.image.size
        row = Row("stdin" if str(src) == STDIO else str(src), str(dst), DONE, w, h,
                  len(data), metrics.bpp(len(data), w, h), quality=q, seconds=seconds)
        row.residual = residual_max_error(data)
        if verbose:
            decoded = codec.decode(data)
            row.psnr = prepared.psnr(decoded)
            if row.residual is not None:  # the bound the file promises, as measured
                row.max_error = prepared.largest_error(decoded)
        return row

    try:
        run_one(src, dst, job, True, quiet)
    finally:  # stop tile workers now: Python 3.11 can fail stopping them at exit
        codec.close()


@click.command(short_help="Restore images from .aec files.")
@click.argument("inputs", nargs=-1, required=False)  # not with --files-from
@click.option("-o", "--output", help="Output image (one input) or folder (several inputs).")
@click.option("--format", "fmt", default=default_of(DecodeOptions, "fmt"), show_default=True,
              help="Output format where the output name is derived or is standard output "
                   "(png, webp, tif, ...); a named output's suffix decides.")
@click.option("--output-quality", type=click.IntRange(*OUTPUT_QUALITY_RANGE), default=None,
              show_default=str(DEFAULT_OUTPUT_QUALITY),
              help=f"Quality of {quality_formats()} outputs, which lose pixels (a note says "
                   f"so; WebP at {LOSSLESS_WEBP} is lossless). Refused for other formats.")
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
@click.option("-v", "--verbose", is_flag=True, help="With several files, a line per file.")
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@dataset_options
def decode(inputs, output, verbose, workers, threads, force, quiet, dataset, **fields
           ) -> None:
    """Restore images from .aec files. The output format follows the suffix (PNG by
    default, or --format where the name is derived or is standard output). An existing
    output is never replaced without -f; with several files, one that is already what
    was asked is skipped (a rerun resumes). - reads standard input or writes standard
    output.

    \b
      aec decode photo.aec photo.png
      aec decode compressed/*.aec -o restored/
      aec decode - < photo.aec > photo.png
    """
    options = build(DecodeOptions, **fields)  # fmt, partial, output quality, device, limits
    if dataset.wanted(inputs):
        checked(options.saving_quality, options.pillow_format)  # a data set's only format
        return run_dataset(dataset, inputs, output, options, workers=workers,
                           threads=threads, force=force, quiet=quiet, verbose=verbose)
    pairs = plan(inputs, output, options.suffix,
                 lambda p: Path(p).suffix.lower() != AEC_SUFFIX, force, given("fmt"))
    if len(pairs) > 1:  # their outputs' names are derived: all in options' format
        checked(options.saving_quality, options.pillow_format)
        return run_list(pairs, options, workers=workers, threads=threads, force=force,
                        quiet=quiet, verbose=verbose,
                        note=options.note(f"{pairs[0][1]} and the other outputs",
                                          options.pillow_format))
    from ..datasets.manifest import DONE, Row
    from ..io.images import output_format, save_image

    [(src, dst)] = pairs
    fmt_out = options.pillow_format if str(dst) == STDIO else output_format(dst)
    quality = checked(options.saving_quality, fmt_out)
    quiet_notes(quiet)
    use_threads(threads)
    codec = options.codec(workers)

    def job() -> Row:
        t0 = time.perf_counter()
        progress = tile_progress(src)
        if options.partial:
            image, report = codec.decode_partial(read_bytes(src), progress)
            if len(report.lost_tiles) == report.tiles:
                raise AecError(f"nothing could be recovered: {report}")
            if report.lost_tiles or report.problems:
                click.echo(f"aec: note: {src}: {report}", err=True)
        else:
            image = codec.decode(read_bytes(src), progress)
        seconds = time.perf_counter() - t0
        save_image(image, dst, force, fmt_out, quality)
        note = options.note(STDOUT_NAME if str(dst) == STDIO else str(dst), fmt_out)
        if note is not None:
            warnings.warn(note, stacklevel=1)
        return Row(str(src), str(dst), DONE, image.width, image.height, mode=image.mode,
                   seconds=seconds)

    try:
        run_one(src, dst, job, False, quiet)
    finally:  # stop tile workers now: Python 3.11 can fail stopping them at exit
        codec.close()


@click.command(short_help="Show an .aec file's header and chunks (no decoding).")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True,
              help="JSON Lines: one object per file, a line each.")
def info(files, as_json) -> None:
    """Show the header and chunk sizes of .aec files (no decoding)."""
    from ..format.inspect import describe, residual_text

    failures = 0
    for name in files:
        try:
            data = read_bytes(Path(name))
            facts = describe(data)
            facts.update(_family_facts(data, facts["model"]))
        except AecError as exc:
            failures += 1
            message = explain(exc)
            fail(message if message.startswith(name) else f"{name}: {message}")
            continue
        if as_json:
            say(json.dumps({"file": name, **facts}))
            continue
        say(f"{name}:")
        for key, value in facts.items():
            if key == "chunks":
                value = ", ".join(f"{k} {v} B" for k, v in value.items())
            elif key == "residual":
                value = residual_text(value)
            elif isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            elif key == "bpp":
                value = f"{value:.4f}"
            say(f"  {key:15s} {value}")
    if failures:
        sys.exit(1)


def _family_facts(data: bytes, model: str) -> dict:
    """What the file's model family says of it (none where the model is not here)."""
    from ..families.base import get_family
    from ..families.zoo import find_model
    from ..format import container

    try:
        family = get_family(find_model(model).family)
    except AecError:
        return {}
    if family is None or family.facts is None:
        return {}
    return family.facts(container.unpack(data).tiles)


@click.command(short_help="List the installed models.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON Lines: one object per model, a line each.")
def models(as_json) -> None:
    """List installed models (the package's and those in $AEC_MODEL_PATH): whether each
    is the default, frozen (shipped by aec: never changed) and what it needs to run."""
    from ..errors import torch_installed
    from ..families.base import get_family
    from ..families.shipped import file_sha256, pins_differ, shipped_model
    from ..families.zoo import DEFAULT_MODEL, LAYER_FAMILIES, available_models

    torch_here = torch_installed()
    rows = []
    for m in available_models(layers=True):
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
        layer = m.family in LAYER_FAMILIES  # a layer's model: the residual layer's, on NumPy
        numpy = layer or (family is not None and family.runs_on_numpy)
        decodes = family is not None and family.decodes_on_numpy
        rows.append({
            "name": m.name,
            "default": m.name == DEFAULT_MODEL,
            "family": m.family,
            "status": status,
            "frozen_since": entry.since if entry and not problems else None,
            "needs": "numpy" if numpy else "torch to encode" if decodes else "torch",
            "layer": layer,
            "torch_installed": torch_here,
            "steps": m.card.get("training", {}).get("steps"),
            "fingerprint": digest[:16],
            "weights": str(m.weights),
            "summary": m.card.get("summary", ""),
        })
    if as_json:  # JSON Lines, as 'aec info --json' prints: one object a line
        for row in rows:
            say(json.dumps(row))
        return
    if not rows:
        fail("no models installed")
        sys.exit(1)
    here = "installed" if torch_here else "not installed"
    for r in rows:
        star = " (default)" if r["default"] else ""
        needs = {"numpy": "the residual layer's model (--lossless, --max-error), runs on NumPy"
                 if r["layer"] else f"runs on NumPy (the torch extra, {here}, adds effort "
                                    "above 1 and CUDA)",
                 "torch to encode": f"decodes on NumPy, encodes with the torch extra ({here})",
                 }.get(r["needs"], f"needs the torch extra ({here})")
        trained = "no training" if r["steps"] is None else f"{r['steps']} training steps"
        say(f"{r['name']}{star}: {r['status']}; {needs}; {r['family']}, "
            f"{trained}, fingerprint {r['fingerprint']}")
        if r["summary"]:
            say(f"    {r['summary']}")


@click.command(short_help="Encode and decode the bundled sample image.")
@click.option("-q", "--quality", type=click.FloatRange(*QUALITY_RANGE), default=DEFAULT_QUALITY,
              show_default=True, help="Quality of the sample's encode, higher is better.")
@device_option
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Also write the .aec and decoded PNG into this folder.")
@force_option
def demo(quality, device, keep, force) -> None:
    """Encode and decode the bundled sample image and report size, PSNR and time."""
    from PIL import Image

    from ..codec import Codec
    from ..io.images import save_image

    outputs = [Path(keep) / name for name in ("kodim23.aec", "kodim23.png")] if keep else []
    plan_outputs(outputs, force, make_folder=True)  # both or neither, before the work
    sample = Path(__file__).parent.parent / "samples" / "kodim23.png"
    t0 = time.perf_counter()
    codec = Codec(None, device).load()
    t_load = time.perf_counter() - t0
    prepared = codec.prepare(Image.open(sample).convert("RGB"))
    t0 = time.perf_counter()
    data = codec.encode(prepared, quality)
    t_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    restored = codec.decode(data)
    t_dec = time.perf_counter() - t0
    quality_db = prepared.psnr(restored)
    w, h = prepared.image.size
    say(f"sample:    {sample.name} ({w}x{h}), model {codec.model_name} on {codec.device}")
    say(f"quality:   {quality:g}")
    say(f"size:      {len(data)} bytes ({metrics.bpp(len(data), w, h):.4f} bpp; "
               f"PNG is {sample.stat().st_size} bytes)")
    say(f"PSNR:      {quality_db:.2f} dB (RGB)")
    say(f"seconds:   load {t_load:.2f}, encode {t_enc:.2f}, decode {t_dec:.2f}")
    if outputs:
        aec, png = outputs
        try:
            aec.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AecError(f"{aec.parent}: cannot make the folder ({exc.strerror})") from None
        write_bytes(aec, data, force)
        save_image(restored, png, force)
        say(f"wrote:     {aec}, {png}")
