"""The ``aec`` command line: a thin layer over the Python API."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from . import container, metrics
from .errors import AecError
from .image_io import atomic_write, read_bytes

AEC_SUFFIX = ".aec"


def _fail(message: str) -> None:
    click.echo(f"aec: error: {message}", err=True)


def _progress(items: list, label: str) -> Iterator:
    """A progress bar on an interactive terminal; plain iteration otherwise."""
    if len(items) > 1 and sys.stderr.isatty():
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar
    else:
        yield from items


def _plan(inputs: tuple[str, ...], out: str | None, out_suffix: str,
          second_is_output: Callable[[str], bool]) -> list[tuple[Path, Path]]:
    """Pair inputs with outputs: ``IN OUT``, ``IN -o OUT`` or ``IN... -o DIR``."""
    if not inputs:
        raise click.UsageError("no input file given")
    if out is None and len(inputs) == 2 and second_is_output(inputs[1]):
        inputs, out = inputs[:1], inputs[1]
    paths = [Path(p) for p in inputs]
    if len(paths) == 1:
        src = paths[0]
        dst = Path(out) if out else src.with_suffix(out_suffix)
        if out and Path(out).is_dir():
            dst = Path(out) / (src.stem + out_suffix)
        pairs = [(src, dst)]
    else:
        folder = Path(out) if out else None
        if folder is not None:
            if folder.exists() and not folder.is_dir():
                raise AecError(f"-o {folder}: with several inputs, -o must be a folder")
            folder.mkdir(parents=True, exist_ok=True)
        pairs = [(p, (folder or p.parent) / (p.stem + out_suffix)) for p in paths]
    for src, dst in pairs:
        if src.resolve() == dst.resolve():
            raise AecError(f"{src}: output would overwrite the input")
    return pairs


def _run_batch(pairs: list[tuple[Path, Path]], label: str, job: Callable[[Path, Path], str],
               quiet: bool) -> None:
    failures = 0
    for src, dst in _progress(pairs, label):
        try:
            line = job(src, dst)
            if not quiet and len(pairs) == 1:
                click.echo(line)
        except AecError as exc:
            failures += 1
            message = str(exc)
            _fail(message if message.startswith(str(src)) else f"{src}: {message}")
    if failures:
        if len(pairs) > 1:
            _fail(f"{failures} of {len(pairs)} files failed")
        sys.exit(1)


def _write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def _device_option(help_text: str):
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                        show_default=True, help=help_text)


device_option = _device_option(
    "Where the transforms run (the exact entropy-parameter path always runs on the CPU).")
max_pixels_option = click.option(
    "--max-pixels", type=click.IntRange(min=1), default=None,
    help="Refuse images larger than this many pixels [default: 200000000].",
)
workers_option = click.option(
    "--workers", type=click.IntRange(min=1), default=None,
    help="Processes coding tiles in parallel [default: CPU count (at most 4) for images "
         "of 8 tiles or more, else 1].",
)


def _codec(model: str | None, device: str, max_pixels: int | None, **options):
    from .codec import DEFAULT_MAX_PIXELS, Codec

    return Codec(model, device, max_pixels or DEFAULT_MAX_PIXELS, **options)


def _tile_progress(src: Path, several_files: bool) -> Callable[[int, int], None] | None:
    """Per-tile progress of one large image on an interactive terminal."""
    if several_files or not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total > 1:
            end = "\n" if done == total else ""
            click.echo(f"\r{src}: tile {done}/{total}", err=True, nl=False)
            click.echo(end, err=True, nl=False)

    return show


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aec", prog_name="aec")
def main() -> None:
    """aec: compress images with a learned codec into .aec files and back."""


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output file (one input) or folder (several inputs).")
@click.option("-q", "--quality", type=click.FloatRange(0, 100), default=None,
              help="Quality 0..100, higher is better [default: 75].")
@click.option("--bpp", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Target bits per pixel: the highest quality whose file fits.")
@click.option("--model", default=None, help="Model name (see 'aec models').")
@click.option("--tile-size", type=click.IntRange(64, 2032), default=None,
              help="Side of the independently coded square tiles, each also coding 8 px "
                   "of its neighbours for a seamless cross-fade [default: 1008].")
@device_option
@max_pixels_option
@workers_option
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
def encode(inputs, output, quality, bpp, model, tile_size, device, max_pixels, workers,
           quiet) -> None:
    """Compress images into .aec files.

    \b
      aec encode photo.png photo.aec -q 60
      aec encode *.png -o compressed/ --bpp 0.5
    """
    from .codec import DEFAULT_QUALITY, DEFAULT_TILE_SIZE

    if quality is not None and bpp is not None:
        raise click.UsageError("give either --quality or --bpp, not both")
    codec = _codec(model, device, max_pixels, tile_size=tile_size or DEFAULT_TILE_SIZE,
                   workers=workers)
    pairs = _plan(inputs, output, AEC_SUFFIX, lambda p: Path(p).suffix.lower() == AEC_SUFFIX)

    def job(src: Path, dst: Path) -> str:
        t0 = time.perf_counter()
        if bpp is not None:
            data, q = codec.encode_to_bpp(src, bpp)
        else:
            q = DEFAULT_QUALITY if quality is None else quality
            data = codec.encode(src, q, progress=_tile_progress(src, len(pairs) > 1))
        seconds = time.perf_counter() - t0
        _write_bytes(dst, data)
        header, _, _ = container.parse_header(data)
        rate = metrics.bpp(len(data), header.width, header.height)
        return (f"{src} -> {dst}: {len(data)} bytes, {rate:.4f} bpp, "
                f"quality {q:g}, {seconds:.2f} s")

    _run_batch(pairs, "encoding", job, quiet)


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output image (one input) or folder (several inputs).")
@click.option("--format", "fmt", default="png", show_default=True,
              help="Output suffix when the output name is derived (png, webp, tif, ...).")
@click.option("--partial", is_flag=True,
              help="Decode the intact tiles of a damaged file, fill lost ones with grey and "
                   "report them (instead of failing).")
@device_option
@max_pixels_option
@click.option("--max-tile-pixels", type=click.IntRange(min=1), default=None,
              help="Largest region decoded at once: a tile, or a whole untiled version-1/2 "
                   "file [default: 4194304].")
@workers_option
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
def decode(inputs, output, fmt, partial, device, max_pixels, max_tile_pixels, workers,
           quiet) -> None:
    """Restore images from .aec files. The output format follows the suffix (PNG by default).

    \b
      aec decode photo.aec photo.png
      aec decode compressed/*.aec -o restored/
    """
    from .image_io import output_format, save_image

    suffix = "." + fmt.lower().lstrip(".")
    output_format(f"x{suffix}")  # reject an unknown --format before any work
    from .codec import DEFAULT_MAX_TILE_PIXELS

    codec = _codec(None, device, max_pixels, workers=workers,
                   max_tile_pixels=max_tile_pixels or DEFAULT_MAX_TILE_PIXELS)
    pairs = _plan(inputs, output, suffix, lambda p: Path(p).suffix.lower() != AEC_SUFFIX)

    def job(src: Path, dst: Path) -> str:
        output_format(dst)
        t0 = time.perf_counter()
        progress = _tile_progress(src, len(pairs) > 1)
        if partial:
            image, report = codec.decode_partial(read_bytes(src), progress)
            if report.lost_tiles or report.problems:
                click.echo(f"aec: note: {src}: {report}", err=True)
        else:
            image = codec.decode(read_bytes(src), progress)
        seconds = time.perf_counter() - t0
        save_image(image, dst)
        return f"{src} -> {dst}: {image.width}x{image.height} {image.mode}, {seconds:.2f} s"

    _run_batch(pairs, "decoding", job, quiet)


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(files, as_json) -> None:
    """Show the header and chunk sizes of .aec files (no decoding)."""
    from .codec import describe

    failures = 0
    for name in files:
        try:
            facts = describe(read_bytes(Path(name)))
        except AecError as exc:
            failures += 1
            _fail(f"{name}: {exc}" if not str(exc).startswith(name) else str(exc))
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


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(as_json) -> None:
    """List installed models (the package's and those in $AEC_MODEL_PATH)."""
    from .registry import DEFAULT_MODEL, available_models

    rows = []
    for m in available_models():
        training = m.card.get("training", {})
        rows.append({
            "name": m.name,
            "default": m.name == DEFAULT_MODEL,
            "family": m.card.get("family", "?"),
            "steps": training.get("steps"),
            "fingerprint": m.fingerprint.hex(),
            "weights": str(m.weights),
            "summary": m.card.get("summary", ""),
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        _fail("no models installed")
        sys.exit(1)
    for r in rows:
        star = " (default)" if r["default"] else ""
        click.echo(f"{r['name']}{star}: {r['family']}, {r['steps']} training steps, "
                   f"fingerprint {r['fingerprint']}")
        if r["summary"]:
            click.echo(f"    {r['summary']}")


@main.command()
@click.option("-q", "--quality", type=click.FloatRange(0, 100), default=75, show_default=True)
@device_option
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Also write the .aec and decoded PNG into this folder.")
def demo(quality, device, keep) -> None:
    """Encode and decode the bundled sample image and report size, PSNR and time."""
    import numpy as np
    from PIL import Image

    from .codec import Codec
    from .image_io import save_image

    sample = Path(__file__).parent / "samples" / "kodim23.png"
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
        _write_bytes(folder / "kodim23.aec", data)
        save_image(restored, folder / "kodim23.png")
        click.echo(f"wrote:     {folder / 'kodim23.aec'}, {folder / 'kodim23.png'}")


@main.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", default="runs/default", show_default=True, help="Run folder.")
@click.option("--eval-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Evaluation images (e.g. Kodak), logged every --eval-every steps.")
@click.option("--steps", type=click.IntRange(min=1), default=20000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--patch", type=click.IntRange(min=64), default=128, show_default=True)
@click.option("--lr", type=float, default=3e-4, show_default=True)
@click.option("--lr-drop-at", type=click.FloatRange(0, 1), default=0.85, show_default=True,
              help="Fraction of --steps after which the learning rate is divided by 10.")
@click.option("--eval-every", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--eval-images", type=click.IntRange(min=1), default=6, show_default=True,
              help="How many of --eval-dir's images (sorted) each evaluation uses.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--N", "n", type=click.IntRange(min=8), default=128, show_default=True)
@click.option("--M", "m", type=click.IntRange(min=8), default=192, show_default=True)
@click.option("--lambdas", default=None,
              help="Rate levels, comma-separated lambdas "
                   "[default: 9 from 0.00033 to 0.27, as shipped]. Given for a run that "
                   "already has a checkpoint with other levels, the "
                   "checkpoint's gains are first moved to these levels.")
@_device_option("Where training runs (auto: CUDA when available).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--export", "export_name", default=None,
              help="After training, export weights under this model name.")
@click.option("--export-dir", type=click.Path(file_okay=False), default=None,
              help="Where --export writes (default: the package's weights folder).")
@click.option("--init", default=None,
              help="Start a new run from these weights (model name or .safetensors file).")
@click.option("--warmup", type=click.IntRange(min=0), default=0, show_default=True,
              help="Steps of linear learning-rate warm-up from the run's first step.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this much wall time (checkpointed); --lr-drop-at is then a "
                   "fraction of it.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32",
              show_default=True, help="bf16: the transforms' bodies under bfloat16 autocast.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the training step.")
@click.option("--channels-last", is_flag=True, help="channels_last memory format.")
@click.option("--crops-on-device", is_flag=True,
              help="Keep the training images on the device and crop them there.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Data-parallel processes (runs torchrun; --batch-size is per process).")
@click.pass_context
def train(ctx, data, out, eval_dir, steps, batch_size, patch, lr, lr_drop_at, eval_every,
          eval_images, checkpoint_every, n, m, lambdas, device, seed, export_name,
          export_dir, init, warmup, seconds, precision, compile_, channels_last,
          crops_on_device, nproc) -> None:
    """Train a model on folders of images (resumes from OUT/checkpoint.pt if present)."""
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        import subprocess

        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "neuralcodec.train",
               *_command_line(ctx, skip={"nproc"})]
        code = subprocess.call(cmd)
        if code:
            raise AecError(f"training with {nproc} processes failed (exit code {code})")
        return
    from .model import ModelConfig
    from .registry import WEIGHTS_DIR
    from .train import TrainOptions, export
    from .train import train as run_training

    config = {**ModelConfig().to_dict(), "N": n, "M": m}
    if lambdas is not None:
        try:
            config["lambdas"] = [float(v) for v in lambdas.split(",")]
            ModelConfig.from_dict(config)
        except ValueError as exc:
            raise AecError(f"--lambdas {lambdas}: {exc}") from None
    opts = TrainOptions(
        data=list(data), out=out, eval_dir=eval_dir, steps=steps, batch_size=batch_size,
        patch=patch, lr=lr, lr_drop_at=lr_drop_at, eval_every=eval_every, eval_images=eval_images,
        checkpoint_every=checkpoint_every, device=device, seed=seed, config=config,
        relevel=lambdas is not None, init=init, warmup=warmup, seconds=seconds,
        precision=precision, compile=compile_, channels_last=channels_last,
        crops_on_device=crops_on_device,
    )
    try:
        run_training(opts, log=lambda msg: click.echo(msg, err=True))
    except ValueError as exc:
        raise AecError(str(exc)) from None
    if export_name and int(os.environ.get("RANK", "0")) == 0:  # one writer under torchrun
        path = export(out, export_name, export_dir or WEIGHTS_DIR)
        click.echo(f"exported {path}")


def _command_line(ctx: click.Context, skip: set[str]) -> list[str]:
    """The command's arguments again, as given (defaults left out), minus ``skip``."""
    positional, options = [], []
    for param in ctx.command.params:
        value = ctx.params[param.name]
        if param.name in skip:
            continue
        if isinstance(param, click.Argument):
            positional += [str(v) for v in value]
        elif getattr(param, "is_flag", False):
            options += [param.opts[0]] if value else []
        elif value is not None and value != param.default:
            options += [param.opts[0], str(value)]
    return positional + options


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--codecs", default="aec,jpeg,webp,avif,jxl,jpeg2000", show_default=True,
              help="Codec families to compare (jpeg and avif give a 4:2:0 and a 4:4:4 curve).")
@click.option("--models", default=None,
              help="aec models, comma-separated; NAME@v1 uses format version 1 "
                   "[default: every installed model].")
@click.option("--out", default="bench", show_default=True, type=click.Path(file_okay=False),
              help="Output folder (results.json/.csv, summary.md, plots; resumes from it).")
@click.option("--quick", is_flag=True, help="Smoke run: 2 images, a few settings per codec.")
@_device_option("Where the aec transforms and MS-SSIM run.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes for the Pillow codecs [default: CPU count, at most 8].")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N images.")
@click.option("--no-speed", is_flag=True, help="Skip the per-stage speed report.")
@click.option("--note", default="", help="Free text stored with the results (e.g. the machine).")
def bench(folder, codecs, models, out, quick, device, workers, limit, no_speed, note) -> None:
    """Rate-distortion (bpp, PSNR, MS-SSIM), BD-rates and speed of aec against JPEG, WebP,
    AVIF, JPEG XL and JPEG 2000 on a folder of images.

    \b
      aec bench photos/ --quick
      aec bench ../shared/datasets/kodak --out results/kodak --codecs aec,jpeg,webp
    """
    from .bench import BenchOptions, run_bench

    def split(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    result = run_bench(BenchOptions(
        folder=folder, out=out, codecs=split(codecs),
        models=split(models) if models else None, quick=quick, device=device,
        workers=workers, limit=limit, speed=not no_speed, note=note,
        log=lambda message: click.echo(message, err=True),
    ))
    click.echo((result.out / "summary.md").read_text())


def run(argv: list[str] | None = None) -> int:
    """Entry point: turns AecError into one line on stderr and a non-zero exit code."""
    try:
        main.main(args=argv, prog_name="aec", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted")
        return 130
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except AecError as exc:
        _fail(str(exc))
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except Exception as exc:  # a bug: one line for users, the traceback on request
        if os.environ.get("AEC_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (set AEC_DEBUG=1 for details)")
        return 2
    return 0


def console_main() -> None:
    with contextlib.suppress(BrokenPipeError):
        sys.exit(run())
