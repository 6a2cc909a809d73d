"""``aec encode`` / ``aec decode`` on a data set: folders, ``--files-from`` lists and
``--engine ray``, delegated to :mod:`neuralcodec.datasets`.

:func:`dataset_options` adds the options to a command and sends a data-set-shaped call
(``--engine ray``, a folder input, ``--recursive`` or ``--files-from``) here; any other
call reaches the command unchanged.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import click

from ..io.files import STDIO
from .common import fail, quiet_notes

_OPTIONS = (
    click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
                 show_default=True,
                 help="Code a data set in this process, or on a Ray cluster (needs "
                      "aec[ray]; --workers is then the number of actors, each loading the "
                      "model once, and --threads each one's transform threads)."),
    click.option("--address", default=None,
                 help="Ray cluster to join ('auto': the running one) [default: start one "
                      "on this machine]."),
    click.option("-r", "--recursive", is_flag=True,
                 help="Also search the subfolders of input folders."),
    click.option("--files-from", type=click.Path(dir_okay=False, allow_dash=True),
                 default=None, help="Also code the paths listed in this file, one a line "
                                    "(- reads standard input)."),
)
# The commands' options a data-set run takes (besides the dataset options).
_TAKEN = {"inputs", "output", "quiet", "force", "device", "max_pixels", "workers", "threads",
          "quality", "bpp", "size", "psnr", "print_psnr", "model", "tile_size", "frame",
          "effort", "fmt", "partial", "max_tile_pixels"}


def dataset_options(direction: str) -> Callable[[Callable], Callable]:
    """Decorate the ``direction`` ("encode" or "decode") command: add the data-set
    options and run data-set-shaped calls through :func:`run_dataset`."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(engine, address, recursive, files_from, **options):
            inputs = options["inputs"]
            if (engine == "ray" or recursive or files_from is not None
                    or any(p != STDIO and Path(p).is_dir() for p in inputs)):
                return run_dataset(direction, engine, address, recursive, files_from,
                                   **options)
            if address is not None:
                raise click.UsageError("--address needs --engine ray")
            return command(**options)

        for option in reversed(_OPTIONS):
            wrapper = option(wrapper)
        return wrapper

    return decorate


def run_dataset(direction: str, engine: str, address: str | None, recursive: bool,
                files_from: str | None, **options) -> None:
    """Code a data set; one line of summary, and one error line if any file failed."""
    from ..datasets import decode_dataset, encode_dataset

    unsupported = [name for name, value in options.items()
                   if name not in _TAKEN and value not in (None, False)]
    if unsupported:
        names = ", ".join("--" + name.replace("_", "-") for name in unsupported)
        raise click.UsageError(f"{names}: not supported for data sets")
    if options["output"] is None or options["output"] == STDIO:
        raise click.UsageError("a data set needs -o DST, the folder of the outputs")
    if address is not None and engine != "ray":
        raise click.UsageError("--address needs --engine ray")
    quiet = options["quiet"]
    quiet_notes(quiet)
    common = dict(engine=engine, address=address, recursive=recursive,
                  files_from=files_from, device=options["device"],
                  workers=options["workers"], threads=options["threads"],
                  force=options["force"], max_pixels=options["max_pixels"])
    bar = _Bar("encoding" if direction == "encode" else "decoding")
    try:
        if direction == "encode":
            targets = {"--quality": options["quality"], "--bpp": options["bpp"],
                       "--size": options["size"], "--psnr": options["psnr"]}
            given = [name for name, value in targets.items() if value is not None]
            if len(given) > 1:
                raise click.UsageError(f"give one of {', '.join(targets)}, not "
                                       f"{' and '.join(given)}")
            summary = encode_dataset(
                options["inputs"], options["output"], quality=options["quality"],
                bpp=options["bpp"], size=options["size"], psnr=options["psnr"],
                measure_psnr=options["print_psnr"], model=options["model"],
                tile_size=options["tile_size"], frame=options["frame"],
                effort=options["effort"],
                progress=bar, **common)
        else:
            summary = decode_dataset(
                options["inputs"], options["output"], fmt=options["fmt"],
                partial=options["partial"], max_tile_pixels=options["max_tile_pixels"],
                progress=bar, **common)
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
