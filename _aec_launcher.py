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
``weakref.finalize``, Ray's shutdown), and the standard streams are flushed.
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
    except BrokenPipeError:  # the reader of our output went away: nothing left to say
        code = 1
    _exit_now(code)


def _exit_now(code: int) -> None:
    import atexit
    import os
    import threading

    try:
        shutdown = getattr(threading, "_shutdown", None)  # what finalization calls first
        if shutdown is not None:
            shutdown()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe or stream: nothing to deliver
                pass
    except KeyboardInterrupt:
        code = 130
    os._exit(code)
