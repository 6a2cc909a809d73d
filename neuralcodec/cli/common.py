"""What the commands share: messages, batch planning, progress and common options."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from click.core import ParameterSource

from ..codec.options import (
    DEFAULT_MAX_PIXELS,
    MAX_AUTO_WORKERS,
    PARALLEL_MIN_TILES,
    OptionError,
)
from ..errors import AecError, AecWarning
from ..io.files import STDIO, STDOUT_NAME, atomic_write, write_error, write_stdout

# What to change, in the command's words, for errors that name an API field.
_OPTION_HINTS = {
    "max_pixels": "raise it with --max-pixels",
    "max_tile_pixels": "raise it with --max-tile-pixels",
    "workers": "see --workers",
    "bpp": "see --bpp",
    "size": "see --size",
    "psnr": "see --psnr",
    "device": "see --device",
    "overwrite": "use -f to replace it",
    "frame": "with --frame N",
}


def fail(message: str) -> None:
    click.echo(f"aec: error: {message}", err=True)


def say(message: str = "", err: bool = False) -> None:
    """A line of the command's output (on standard error with ``err``). Output that
    does not get out (a reader gone, a full disk) fails the command, naming the stream."""
    try:
        click.echo(message, err=err)
    except OSError as exc:
        raise write_error("standard error" if err else STDOUT_NAME, exc) from None


def quiet_notes(quiet: bool) -> None:
    """--quiet: no notes either (for the rest of this command)."""
    if quiet:
        warnings.simplefilter("ignore", AecWarning)


# Options whose flag is not the field's name with dashes.
_FLAGS = {"fmt": "--format"}


def flag(field: str) -> str:
    """The command line's name of an API field: ``tile_size`` is ``--tile-size``."""
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


def explain(exc: AecError) -> str:
    """An error's message for the command line: the option to change, where one helps."""
    if isinstance(exc, OptionError):  # names its options: in the command's words
        return exc.words(flag)
    hint = _OPTION_HINTS.get(exc.field or "")
    return f"{exc} ({hint})" if hint else str(exc)


def build(kind: type, **fields):
    """The command's ``EncodeOptions`` / ``DecodeOptions`` from its flags, named as their
    fields: a flag left at its default is left to the options' own default (the default
    quality is no quality given, so a target may be). What they cannot use is a usage
    error (exit 2), before any file is touched."""
    context = click.get_current_context()
    given = {name: value for name, value in fields.items()
             if context.get_parameter_source(name) is not ParameterSource.DEFAULT}
    return checked(kind, **given)


def checked(check: Callable, *args, **kwargs):
    """``check(*args, **kwargs)``, whose OptionError is a usage error (exit 2), as in :func:`build`:
    for the options' checks that need what the command line names (an output's
    format)."""
    try:
        return check(*args, **kwargs)
    except OptionError as exc:
        raise click.UsageError(explain(exc)) from None


def progress(items: list, label: str) -> Iterator:
    """A progress bar on an interactive terminal; plain iteration otherwise."""
    if len(items) > 1 and sys.stderr.isatty():
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar
    else:
        yield from items


def plan(inputs: tuple[str, ...], out: str | None, out_suffix: str,
         second_is_output: Callable[[str], bool]) -> list[tuple[Path, Path]]:
    """Pair inputs with outputs: ``IN OUT``, ``IN -o OUT`` or ``IN... -o DIR``; ``-`` is
    standard input or output (an input ``-`` goes to standard output unless named).
    Refuses, before any work, an input that is also an output and outputs that collide."""
    if not inputs:
        raise click.UsageError("no input file given")
    if out is None and len(inputs) == 2 and (inputs[1] == STDIO or second_is_output(inputs[1])):
        inputs, out = inputs[:1], inputs[1]
    if inputs.count(STDIO) > 1:
        raise click.UsageError("standard input (-) can be read only once")
    paths = [Path(p) for p in inputs]
    if len(paths) == 1:
        src = paths[0]
        if out:
            dst = Path(out)
            if out != STDIO and dst.is_dir():
                dst = dst / (("stdin" if str(src) == STDIO else src.stem) + out_suffix)
        else:
            dst = Path(STDIO) if str(src) == STDIO else src.with_suffix(out_suffix)
        pairs = [(src, dst)]
    else:
        if out == STDIO:
            raise click.UsageError("several inputs cannot all go to standard output")
        if STDIO in inputs:
            raise click.UsageError("standard input (-) must be the only input")
        folder = Path(out) if out else None
        if folder is not None:
            if folder.exists() and not folder.is_dir():
                raise AecError(f"-o {folder}: with several inputs, -o must be a folder")
            folder.mkdir(parents=True, exist_ok=True)
        pairs = [(p, (folder or p.parent) / (p.stem + out_suffix)) for p in paths]
    _check_pairs(pairs)
    return pairs


def _check_pairs(pairs: list[tuple[Path, Path]]) -> None:
    sources = {src.resolve(): src for src, _ in pairs if str(src) != STDIO}
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        if str(dst) == STDIO:
            continue
        key = dst.resolve()
        if key in sources:
            raise AecError(f"{sources[key]}: would be overwritten by the output of {src}")
        if key in seen:
            if seen[key].resolve() == src.resolve():
                raise AecError(f"{src} is given twice; nothing was written")
            raise AecError(f"{seen[key]} and {src} would both be written to {dst}; "
                           "nothing was written")
        seen[key] = src


def run_batch(pairs: list[tuple[Path, Path]], label: str, job: Callable[[Path, Path], str],
              quiet: bool) -> None:
    failures = 0
    for src, dst in progress(pairs, label):
        try:
            line = job(src, dst)
            if not quiet and len(pairs) == 1:
                # Data on standard output: the report goes to standard error.
                say(line, err=str(dst) == STDIO)
        except AecError as exc:
            failures += 1
            message, where = explain(exc), "stdin" if str(src) == STDIO else str(src)
            fail(message if message.startswith(where) else f"{where}: {message}")
    if failures:
        if len(pairs) > 1:
            fail(f"{failures} of {len(pairs)} files failed")
        sys.exit(1)


def write_bytes(path: Path, data: bytes, overwrite: bool) -> None:
    if str(path) == STDIO:
        write_stdout(data)
    else:
        atomic_write(path, lambda f: f.write(data), overwrite)


threads_option = click.option(
    "--threads", type=click.IntRange(min=1), default=None, show_default="one per core",
    help="Threads of the transforms. Files are identical whatever the number.")


def use_threads(threads: int | None) -> None:
    if threads is not None:
        from ..codec.threads import set_threads

        set_threads(threads)


force_option = click.option("-f", "--force", is_flag=True,
                            help="Replace existing output files (refused otherwise).")


def device_option_with(help_text: str):
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                        show_default=True, help=help_text)


device_option = device_option_with(
    "Where the transforms run (the exact entropy-parameter path always runs on the CPU).")
max_pixels_option = click.option(
    "--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
    help="Refuse images larger than this many pixels.",
)


def _workers_default() -> str:
    return (f"CPU count (at most {MAX_AUTO_WORKERS}) for images of {PARALLEL_MIN_TILES} "
            "tiles or more, else 1")


workers_option = click.option(
    "--workers", type=click.IntRange(min=1), default=None, show_default=_workers_default(),
    help="Processes coding tiles in parallel.",
)


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
