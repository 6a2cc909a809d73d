"""``aec encode`` / ``aec decode`` on several files: a data set (folders,
``--files-from`` lists and ``--engine ray``) or a list of files, both delegated to
:mod:`neuralcodec.datasets` and reported alike.

:func:`dataset_options` adds the options to a command, which receives them as one
:class:`DataSet`; a data-set-shaped call (``--engine ray``, a folder input,
``--recursive`` or ``--files-from``) runs through :func:`run_dataset` with the options
the command built, several files named through :func:`run_list`.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..io.files import STDIO
from .common import fail, file_line, quiet_notes, say

if TYPE_CHECKING:
    from ..codec.options import DecodeOptions, EncodeOptions

_OPTIONS = (
    click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
                 show_default=True,
                 help="Code a data set in this process, or on a Ray cluster (needs "
                      "neuralcodec[ray]; --workers is then the number of actors, each loading the "
                      "model once, and --threads each one's transform threads)."),
    click.option("--address", default=None, show_default="start one on this machine",
                 help="Ray cluster to join ('auto': the running one)."),
    click.option("-r", "--recursive", is_flag=True,
                 help="Also search the subfolders of input folders."),
    click.option("--files-from", type=click.Path(dir_okay=False, allow_dash=True),
                 default=None, help="Also code the paths listed in this file, one a line "
                                    "(- reads standard input)."),
)


@dataclass(frozen=True)
class DataSet:
    """The data-set options of a command."""

    engine: str
    address: str | None
    recursive: bool
    files_from: str | None

    def wanted(self, inputs: tuple[str, ...]) -> bool:
        """Whether the call codes a data set (else the command codes its files)."""
        return (self.engine == "ray" or self.recursive or self.files_from is not None
                or any(p != STDIO and Path(p).is_dir() for p in inputs))


def dataset_options(command: Callable) -> Callable:
    """Decorate ``aec encode`` or ``aec decode``: add the data-set options, given to the
    command as ``dataset``."""

    @functools.wraps(command)
    def wrapper(engine, address, recursive, files_from, **params):
        if address is not None and engine != "ray":
            raise click.UsageError("--address needs --engine ray")
        return command(dataset=DataSet(engine, address, recursive, files_from), **params)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def run_dataset(dataset: DataSet, inputs: tuple[str, ...], output: str | None,
                options: EncodeOptions | DecodeOptions, *, workers: int | None,
                threads: int | None, force: bool, quiet: bool, verbose: bool) -> None:
    """Code a data set into the folder ``output``, with a manifest (see :func:`_batch`);
    ``verbose`` also measures each encoded file's PSNR."""
    from ..codec.options import EncodeOptions
    from ..datasets import decode_dataset, encode_dataset

    if output is None or output == STDIO:
        raise click.UsageError("a data set needs -o DST, the folder of the outputs")
    encoding = isinstance(options, EncodeOptions)
    common = dict(engine=dataset.engine, address=dataset.address,
                  recursive=dataset.recursive, files_from=dataset.files_from,
                  workers=workers, threads=threads, force=force)

    def code(progress, report):
        if encoding:
            return encode_dataset(inputs, output, options, measure_psnr=verbose,
                                  progress=progress, report=report, **common)
        return decode_dataset(inputs, output, options, progress=progress, report=report,
                              **common)

    _batch(code, encoding, Path(output), quiet, verbose)


def run_list(pairs: list[tuple[Path, Path]], options: EncodeOptions | DecodeOptions, *,
             workers: int | None, threads: int | None, force: bool, quiet: bool,
             verbose: bool, note: Warning | None = None) -> None:
    """Code several files named on the command line (their outputs chosen by
    :func:`.common.plan`) as a data set is coded, without a manifest: the same resume
    rule, report lines and summary (see :func:`_batch`). ``note`` is shown once if a file
    was coded (a decode's lossy output format, as :func:`decode_dataset` does)."""
    from ..codec.options import EncodeOptions
    from ..datasets import Item, Settings, code_files

    encoding = isinstance(options, EncodeOptions)
    items = [Item(str(src), str(dst), str(dst)) for src, dst in pairs]
    settings = Settings(options, force=force, measure_psnr=encoding and verbose)

    def code(progress, report):
        return code_files(items, settings, workers=workers, threads=threads,
                          progress=progress, report=report)

    _batch(code, encoding, None, quiet, verbose, note)


def _batch(code: Callable, encoding: bool, destination: Path | None, quiet: bool,
           verbose: bool, note: Warning | None = None) -> None:
    """What a batch prints, a data set or a list alike: with ``verbose`` a line per file
    (as one file's, its output under ``destination`` where rows name it relatively),
    else a progress bar on a terminal; then a summary, and one error line (exit code 1)
    if any file failed."""
    quiet_notes(quiet)

    def report(row) -> None:
        if verbose and not quiet:
            where = None if destination is None else str(destination / row.output)
            say(file_line(row, encoding, where))

    # With -v the lines show the progress; a bar drawn over them would garble both.
    bar = _Bar("encoding" if encoding else "decoding", enabled=not verbose)
    try:
        summary = code(bar, report)
    finally:
        bar.close()
    if note is not None and summary.done:
        warnings.warn(note, stacklevel=1)
    if not quiet:
        say(str(summary))
    failures = summary.failures
    if failures:
        first = failures[0]
        where = first.error if first.error.startswith(first.input) else \
            f"{first.input}: {first.error}"
        listed = (f" (listed in {summary.manifest})" if summary.manifest is not None
                  else "" if verbose or len(failures) == 1 else " (-v names each)")
        fail(f"{len(failures)} of {summary.files} files failed{listed}; the first: {where}")
        sys.exit(1)


class _Bar:
    """A progress bar on an interactive terminal, fed (done, total)."""

    def __init__(self, label: str, enabled: bool = True):
        self.label = label
        self.enabled = enabled
        self.bar = None
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < 2 or not sys.stderr.isatty():
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
