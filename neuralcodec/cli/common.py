"""What the commands share: messages, planning, report lines, progress and common
options."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from ..codec.options import (
    DEFAULT_MAX_PIXELS,
    MAX_AUTO_WORKERS,
    PARALLEL_MIN_TILES,
    OptionError,
)
from ..errors import AecError, AecWarning
from ..io.files import (
    STDIO,
    STDOUT_NAME,
    atomic_write,
    check_folder,
    check_input,
    check_output,
    write_error,
    write_stdout,
)

if TYPE_CHECKING:  # the data sets' rows: imported when a file is coded, not for --help
    from ..datasets.manifest import Row

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


def given(name: str) -> bool:
    """Whether the running command's parameter ``name`` was given (not left at its
    default)."""
    source = click.get_current_context().get_parameter_source(name)
    return source is not ParameterSource.DEFAULT


def build(kind: type, **fields):
    """The command's ``EncodeOptions`` / ``DecodeOptions`` from its flags, named as their
    fields: a flag left at its default is left to the options' own default (the default
    quality is no quality given, so a target may be). What they cannot use is a usage
    error (exit 2), before any file is touched."""
    return checked(kind, **{name: value for name, value in fields.items() if given(name)})


def checked(check: Callable, *args, **kwargs):
    """``check(*args, **kwargs)``, whose OptionError is a usage error (exit 2), as in
    :func:`build`: for the options' checks that need what the command line names (an
    output's format)."""
    try:
        return check(*args, **kwargs)
    except OptionError as exc:
        raise click.UsageError(explain(exc)) from None


def plan(inputs: tuple[str, ...], out: str | None, out_suffix: str,
         is_output_name: Callable[[str], bool], force: bool,
         format_given: bool = False) -> list[tuple[Path, Path]]:
    """Pair inputs with outputs, and refuse before any work what cannot be done.

    ``IN OUT``, ``IN -o OUT`` or ``IN... -o DIR``; ``-`` is standard input or output (an
    input ``-`` goes to standard output unless named). A second argument is the output
    only when it is ``-`` or an output by its suffix (``is_output_name``), never by a
    guess: one that is neither, nor an existing input, is a usage error naming ``-o``.
    ``format_given`` (``--format``) refuses a named output file, whose suffix decides.

    Refused before any work: an input that is not there, an input that is also an
    output, outputs that collide, and outputs that cannot be written (binary data to a
    terminal, a folder that is missing or takes no files; for one input, an existing
    file without ``force``). Several inputs leave an existing output to the batch's
    resume rule, and a missing ``-o DIR`` is made when the first output is written."""
    if not inputs:
        raise click.UsageError("no input file given")
    if out is None and len(inputs) == 2:
        second = inputs[1]
        if second == STDIO or is_output_name(second):
            inputs, out = inputs[:1], second
        elif not os.path.lexists(second):
            raise click.UsageError(f"{second}: no such input; to name the output, use "
                                   f"-o {second}")
    if inputs.count(STDIO) > 1:
        raise click.UsageError("standard input (-) can be read only once")
    paths = [Path(p) for p in inputs]
    folder = None
    if len(paths) == 1:
        src = paths[0]
        if out:
            dst = Path(out)
            if out != STDIO and dst.is_dir():
                dst = dst / (("stdin" if str(src) == STDIO else src.stem) + out_suffix)
            elif format_given and out != STDIO:
                raise click.UsageError("--format applies when the output name is derived or "
                                       f"is standard output; {out}'s suffix decides")
        else:
            dst = Path(STDIO) if str(src) == STDIO else src.with_suffix(out_suffix)
        pairs = [(src, dst)]
    else:
        if out == STDIO:
            raise click.UsageError("several inputs cannot all go to standard output")
        if STDIO in inputs:
            raise click.UsageError("standard input (-) must be the only input")
        folder = Path(out) if out else None
        if folder is not None and folder.exists() and not folder.is_dir():
            raise AecError(f"-o {folder}: with several inputs, -o must be a folder")
        pairs = [(p, (folder or p.parent) / (p.stem + out_suffix)) for p in paths]
    for src in paths:
        check_input(src)
    _check_pairs(pairs)
    plan_outputs([dst for _, dst in pairs], force, resume=len(pairs) > 1,
                 make_folder=folder is not None)
    return pairs


def plan_outputs(outputs: list[Path], force: bool, resume: bool = False,
                 make_folder: bool = False) -> None:
    """Refuse, before any work, outputs that could not be written (see
    :func:`~neuralcodec.io.files.check_output`); ``make_folder``: a missing folder is made
    when the first is written. With ``resume`` (several files), an existing output is
    left to the batch's rule (skipped if already done), so only the folders are checked."""
    if not resume:
        for path in outputs:
            check_output(path, force, make_folder)
        return
    for parent in dict.fromkeys(path.parent for path in outputs):
        check_folder(parent, make_folder)


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


def file_line(row: Row, encoding: bool, output: str | None = None) -> str:
    """A file's report line: one file's, and each file's of a batch with -v. ``output``
    names the output where the row's is relative (a data set's)."""
    from ..datasets.manifest import FAILED, SKIPPED

    head = f"{row.input} -> {output or row.output}: "
    if row.status == FAILED:
        return f"{head}failed: {row.error}"
    if encoding:
        facts = f"{row.bytes} bytes, {row.bpp:.4f} bpp, quality {row.quality:g}"
        if row.residual is not None:
            facts = (f"{row.bytes} bytes, {row.bpp:.4f} bpp, base quality {row.quality:g}"
                     f" + residual K={row.residual}")
    else:
        facts = f"{row.width}x{row.height}" + (f" {row.mode}" if row.mode else "")
    when = "skipped (already done)" if row.status == SKIPPED else f"{row.seconds:.2f} s"
    psnr = "" if row.psnr is None else f", PSNR {row.psnr:.2f} dB"
    if row.max_error is not None:
        psnr += f", max error {row.max_error}"
    return f"{head}{facts}, {when}{psnr}"


def run_one(src: Path, dst: Path, job: Callable[[], Row], encoding: bool, quiet: bool
            ) -> None:
    """Code one file: its line (on standard error when the data goes to standard output),
    or one error line and exit code 1."""
    try:
        row = job()
    except AecError as exc:
        message, where = explain(exc), "stdin" if str(src) == STDIO else str(src)
        fail(message if message.startswith(where) else f"{where}: {message}")
        sys.exit(1)
    if not quiet:
        say(file_line(row, encoding), err=str(dst) == STDIO)


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


def candidate_progress(src: Path) -> Callable[[float, int, int], None] | None:
    """On an interactive terminal, a line per base quality that a residual-layer encode
    tries (each is a whole encode)."""
    if not sys.stderr.isatty():
        return None
    tried: list[float] = []

    def show(quality: float, size: int, total: int) -> None:
        tried.append(quality)
        end = "\n" if len(tried) == total else ""
        click.echo(f"\r{src}: base quality {quality:g}: {size} bytes "
                   f"({len(tried)}/{total})", err=True, nl=False)
        click.echo(end, err=True, nl=False)

    return show


def tile_progress(src: Path) -> Callable[[int, int], None] | None:
    """Per-tile progress of one large image on an interactive terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total > 1:
            end = "\n" if done == total else ""
            click.echo(f"\r{src}: tile {done}/{total}", err=True, nl=False)
            click.echo(end, err=True, nl=False)

    return show


def fit_progress(src: Path) -> Callable[[int, int, float], None] | None:
    """Progress of a per-image fit (the overfitted family's encoder), with its ETA, on
    an interactive terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, seconds: float) -> None:
        left = seconds / done * (total - done)
        eta = f"{left / 60:.0f} min" if left >= 90 else f"{left:.0f} s"
        click.echo(f"\r{src}: fit {done}/{total} iterations, {seconds:.0f} s, about {eta} "
                   "left ", err=True, nl=False)
        if done == total:
            click.echo("", err=True)

    return show
