"""Start-up and exit of the ``aec`` command.

Start-up: Ctrl-C at any moment exits 130 without a traceback. The console script (and
``bin/aec``) imports this top-level module rather than ``neuralcodec.cli``: importing a
package first runs its ``__init__`` (Pillow and the model families, then click and NumPy
for the command line), and a KeyboardInterrupt raised there would escape as a traceback
before the command line's own handling is in place. This module imports nothing but
``sys`` until it is inside that guard.

Exit: once a command has finished, the interpreter's own finalization (tearing down
every module, torch's included) is skipped: it costs about 0.6 s after torch is loaded,
for nothing the user sees. What finalization would do that matters still happens first:
non-daemon threads are joined, ``atexit`` handlers run (multiprocessing's clean-up,
``weakref.finalize``, Ray's shutdown), and the standard streams are flushed; output
that cannot be (a reader gone) makes the exit code 1, with a line saying so, and
Python's own "Exception ignored ... BrokenPipeError" at exit never comes.
"""

import sys


def console_main() -> None:
    try:
        from neuralcodec.cli.main import run
    except KeyboardInterrupt:
        sys.stderr.write("aec: error: interrupted\n")
        sys.exit(130)
    try:
        code = run()
    except BrokenPipeError:  # one run() could not report: standard error's, say
        failure = _stdout_failure() or "output closed before all of it was written (broken pipe)"
        _say(f"aec: error: {failure}")
        code = 1
    _exit_now(code)


def _stdout_failure() -> object | None:
    """Why standard output cannot take what is left in it (neuralcodec.io.files)."""
    from neuralcodec.io.files import stdout_failure

    try:
        return stdout_failure()
    except ValueError:  # closed by the program: nothing was left to deliver
        return None


def _say(line: str) -> None:
    """A last line on standard error, if it still takes one."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _exit_now(code: int) -> None:
    import atexit
    import os
    import threading

    try:
        shutdown = getattr(threading, "_shutdown", None)  # what finalization calls first
        if shutdown is not None:
            shutdown()
        atexit._run_exitfuncs()
        failure = _stdout_failure()  # output that never got out fails the command
        if failure is not None and code == 0:
            _say(f"aec: error: {failure}")
            code = 1
        try:
            sys.stderr.flush()
        except (OSError, ValueError):  # nowhere left to say anything
            pass
    except KeyboardInterrupt:
        code = 130
    os._exit(code)
