"""The ``aec`` command line: a thin layer over the Python API.

Importing it stays light (click, Pillow and the format): each command imports what it
needs when it runs, so ``aec --help`` and ``aec info`` never load torch.
"""

from __future__ import annotations

import os
import warnings

import click

from ..errors import TORCH_INSTALL, AecError, AecWarning, torch_missing
from ..version import __version__
from . import bench, coding, train
from .common import explain, fail


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aec")
def main() -> None:
    """aec: compress images with a learned codec into .aec files and back."""


for command in (coding.encode, coding.decode, coding.info, coding.models, coding.demo,
                train.train, bench.bench):
    main.add_command(command)


def run(argv: list[str] | None = None) -> int:
    """Entry point: turns AecError into one line on stderr and a non-zero exit code, and
    the library's notes (AecWarning) into ``aec: note: ...`` lines."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", AecWarning)  # every file's notes, not the first
        warnings.showwarning = _show_note
        return _run(argv)


def _show_note(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, AecWarning):
        click.echo(f"aec: note: {message}", err=True)
    else:
        _show_other(message, category, filename, lineno, file, line)


_show_other = warnings.showwarning


def _run(argv: list[str] | None) -> int:
    try:
        main.main(args=argv, prog_name="aec", standalone_mode=False)
    except click.exceptions.Abort:
        fail("interrupted")
        return 130
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except AecError as exc:
        fail(explain(exc))
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except Exception as exc:  # a bug: one line for users, the traceback on request
        if isinstance(exc, ModuleNotFoundError) and torch_missing(exc):  # training, bench
            fail(f"this command needs PyTorch, which is not installed: {TORCH_INSTALL}")
            return 1
        if os.environ.get("AEC_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (set AEC_DEBUG=1 for details)")
        return 2
    return 0
