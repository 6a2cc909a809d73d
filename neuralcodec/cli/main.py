"""The ``aec`` command line: a thin layer over the Python API.

Importing it stays light (click, Pillow and the format): each command imports what it
needs when it runs, so ``aec --help`` and ``aec info`` never load torch.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import click

from ..codec.options import OptionNote
from ..errors import TORCH_INSTALL, AecError, AecWarning, torch_missing
from ..version import __version__
from . import bench, coding, train
from .common import explain, fail, flag


class _Commands(click.Group):
    """The command group. A pipe that closes under a write the command does not check
    (standard output's are, by ``common.say``; ``--help`` and ``--version`` are not)
    still fails the command with one line: click itself would exit 1 silently."""

    def make_context(self, *args, **kwargs) -> click.Context:
        with _closed_pipe_fails():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context):
        with _closed_pipe_fails():
            return super().invoke(ctx)


@contextmanager
def _closed_pipe_fails() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        raise AecError("output closed before all of it was written (broken pipe)") from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
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
        if isinstance(message, OptionNote):  # its options as this command spells them
            message = message.words(flag)
        click.echo(f"aec: note: {message}", err=True)
    else:
        _show_other(message, category, filename, lineno, file, line)


_show_other = warnings.showwarning


def usage_line(exc: click.exceptions.UsageError, argv: list[str]) -> str:
    """Every kind of usage error (a bad value or range, a missing argument, an unknown
    option, a combination refused) as one line naming where to look, as runtime errors
    are one line: click's own form is a four-line block."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    if exc.ctx is not None:
        command = exc.ctx.command_path
    else:  # click raises some parsing errors without their command (an option's value)
        named = [arg for arg in argv[:1] if arg in main.commands]
        command = " ".join(["aec", *named])
    return f"{message} (see '{command} --help')"


def _run(argv: list[str] | None) -> int:
    try:
        main.main(args=argv, prog_name="aec", standalone_mode=False)
    except click.exceptions.Abort:
        fail("interrupted")
        return 130
    except click.exceptions.NoArgsIsHelpError as exc:  # a bare 'aec': the help itself
        exc.show()
        return exc.exit_code
    except click.exceptions.UsageError as exc:
        fail(usage_line(exc, sys.argv[1:] if argv is None else argv))
        return 2
    except click.exceptions.ClickException as exc:
        fail(exc.format_message())
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
