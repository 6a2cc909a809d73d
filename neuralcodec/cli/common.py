"""What the commands share: messages, batch planning, progress and common options."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from ..errors import AecError
from ..io.files import atomic_write

AEC_SUFFIX = ".aec"


# What to change, in the command's words, for errors that name an API field.
_OPTION_HINTS = {
    "max_pixels": "raise it with --max-pixels",
    "max_tile_pixels": "raise it with --max-tile-pixels",
    "workers": "see --workers",
    "bpp": "see --bpp",
    "device": "see --device",
}


def fail(message: str) -> None:
    click.echo(f"aec: error: {message}", err=True)


def explain(exc: AecError) -> str:
    """An error's message for the command line: the option to change, where one helps."""
    hint = _OPTION_HINTS.get(exc.field or "")
    return f"{exc} ({hint})" if hint else str(exc)


def progress(items: list, label: str) -> Iterator:
    """A progress bar on an interactive terminal; plain iteration otherwise."""
    if len(items) > 1 and sys.stderr.isatty():
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar
    else:
        yield from items


def plan(inputs: tuple[str, ...], out: str | None, out_suffix: str,
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


def run_batch(pairs: list[tuple[Path, Path]], label: str, job: Callable[[Path, Path], str],
               quiet: bool) -> None:
    failures = 0
    for src, dst in progress(pairs, label):
        try:
            line = job(src, dst)
            if not quiet and len(pairs) == 1:
                click.echo(line)
        except AecError as exc:
            failures += 1
            message = explain(exc)
            fail(message if message.startswith(str(src)) else f"{src}: {message}")
    if failures:
        if len(pairs) > 1:
            fail(f"{failures} of {len(pairs)} files failed")
        sys.exit(1)


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def device_option_with(help_text: str):
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                        show_default=True, help=help_text)


device_option = device_option_with(
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


def make_codec(model: str | None, device: str, max_pixels: int | None, **options):
    from ..codec import DEFAULT_MAX_PIXELS, Codec

    return Codec(model, device, max_pixels or DEFAULT_MAX_PIXELS, **options)


def tile_progress(src: Path, several_files: bool) -> Callable[[int, int], None] | None:
    """Per-tile progress of one large image on an interactive terminal."""
    if several_files or not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total > 1:
            end = "\n" if done == total else ""
            click.echo(f"\r{src}: tile {done}/{total}", err=True, nl=False)
            click.echo(end, err=True, nl=False)

    return show
