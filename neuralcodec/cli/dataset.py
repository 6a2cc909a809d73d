"""``aec encode`` / ``aec decode`` on a data set: folders, ``--files-from`` lists and
``--engine ray``, delegated to :mod:`neuralcodec.datasets`.

:func:`dataset_options` adds the options to a command, which receives them as one
:class:`DataSet`; a data-set-shaped call (``--engine ray``, a folder input,
``--recursive`` or ``--files-from``) runs through :func:`run_dataset` with the options
the command built.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..io.files import STDIO
from .common import fail, quiet_notes

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
                threads: int | None, force: bool, quiet: bool,
                measure_psnr: bool = False) -> None:
    """Code a data set; one line of summary, and one error line if any file failed."""
    from ..codec.options import EncodeOptions
    from ..datasets import decode_dataset, encode_dataset

    if output is None or output == STDIO:
        raise click.UsageError("a data set needs -o DST, the folder of the outputs")
    quiet_notes(quiet)
    encoding = isinstance(options, EncodeOptions)
    bar = _Bar("encoding" if encoding else "decoding")
    common = dict(engine=dataset.engine, address=dataset.address,
                  recursive=dataset.recursive, files_from=dataset.files_from,
                  workers=workers, threads=threads, force=force, progress=bar)
    try:
        if encoding:
            summary = encode_dataset(inputs, output, options, measure_psnr=measure_psnr,
                                     **common)
        else:
            summary = decode_dataset(inputs, output, options, **common)
    finally:
        bar.close()
    if not quiet:
        click.echo(str(summary))
    failures = summary.failures
    if failures:
        first = failures[0]
        where = first.error if first.error.startswith(first.input) else \
            f"{first.input}: {first.error}"
        fail(f"{len(failures)} of {summary.files} files failed (listed in "
             f"{summary.manifest}); the first: {where}")
        sys.exit(1)


class _Bar:
    """A progress bar on an interactive terminal, fed (done, total)."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if total < 2 or not sys.stderr.isatty():
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
