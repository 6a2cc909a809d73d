"""The bench command: a thin layer over :mod:`neuralcodec.bench`."""

from __future__ import annotations

import click

from ..bench.classical import DEFAULT_CLASSICAL, MAX_POOL_WORKERS
from .common import device_option_with, say


@click.command(short_help="Compare aec with JPEG, WebP, AVIF, JPEG XL, JPEG 2000 and the "
                          "lossless codecs.")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--codecs", default=",".join(("aec", *DEFAULT_CLASSICAL)), show_default=True,
              help="Codec families to compare (jpeg and avif give a 4:2:0 and a 4:4:4 "
                   "curve). Not in the default, as they are slow: 'lossless' (the lossless "
                   "table: png, webp-lossless, jxl-lossless, jpegls, each also by name) "
                   "and jxl-distance (JPEG XL swept by distance).")
@click.option("--models", default=None,
              show_default="every installed model but aec-of, whose every encode is a fit",
              help="aec models, comma-separated; NAME@v1 uses format version 1.")
@click.option("--out", default="bench", show_default=True, type=click.Path(file_okay=False),
              help="Output folder (results.json/.csv, summary.md, plots; resumes from it).")
@click.option("--effort", default="1", show_default=True,
              help="Encoder effort levels of the aec models, comma-separated: one curve "
                   "per level (e.g. 1,2,4).")
@click.option("--max-error", "max_error", default=None, metavar="K,K,...",
              help="Error bounds of the lossless table (0: lossless): JPEG-LS's NEAR values "
                   "(default 0,1,2,4), and rows of the aec models coded with lossless=True "
                   "/ max_error=K (none unless given).")
@click.option("--cache", type=click.Path(file_okay=False), default=None,
              show_default="OUT/cache",
              help="Folder of the row cache, to share finished rows between runs and "
                   "output folders.")
@click.option("--quick", is_flag=True, help="Smoke run: 2 images, a few settings per codec.")
@device_option_with("Where the aec transforms and MS-SSIM run.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              show_default=f"CPU count, at most {MAX_POOL_WORKERS}",
              help="Processes for the Pillow codecs.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N images.")
@click.option("--no-speed", is_flag=True, help="Skip the per-stage speed report.")
@click.option("--note", default="", help="Free text stored with the results (e.g. the machine).")
def bench(folder, codecs, models, effort, max_error, cache, out, quick, device, workers, limit,
          no_speed, note) -> None:
    """Rate-distortion (bpp, PSNR, MS-SSIM), BD-rates and speed of aec against JPEG, WebP,
    AVIF, JPEG XL and JPEG 2000 on a folder of images, and a table of lossless and
    near-lossless bits per pixel (PNG, WebP and JPEG XL lossless, JPEG-LS NEAR=K).

    \b
      aec bench photos/ --quick
      aec bench ../shared/datasets/kodak --out results/kodak --codecs aec,jpeg,webp
      aec bench ../shared/datasets/kodak --codecs aec --effort 1,2,3,4
      aec bench ../shared/datasets/kodak --codecs lossless --no-speed
      aec bench photos/ --codecs aec,jpegls --models aec-hp-ckbd --max-error 0,1,2,4
    """
    from ..bench.harness import BenchOptions, run_bench

    def split(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    result = run_bench(BenchOptions(
        folder=folder, out=out, codecs=split(codecs),
        models=split(models) if models else None, quick=quick,
        efforts=_levels(effort, "--effort", 1),
        max_errors=None if max_error is None else _levels(max_error, "--max-error", 0),
        cache=cache, device=device,
        workers=workers, limit=limit, speed=not no_speed, note=note,
        log=lambda message: click.echo(message, err=True),
    ))
    say((result.out / "summary.md").read_text())


def _levels(text: str, option: str, lowest: int) -> list[int]:
    """A comma-separated list of integers from ``lowest`` up."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a list of integers",
                                 param_hint=option) from None
    if not levels or min(levels) < lowest:
        raise click.BadParameter(f"values start at {lowest}", param_hint=option)
    return levels
