"""Start-up of the ``aec`` command: Ctrl-C at any moment exits 130 without a traceback.

The console script (and ``bin/aec``) imports this top-level module rather than
``neuralcodec.cli``: importing a package first runs its ``__init__`` (Pillow and the model
families, then click and NumPy for the command line), and a KeyboardInterrupt raised there
would escape as a traceback before the command line's own handling is in place. This
module imports nothing but ``sys`` until it is inside that guard.
"""

import sys


def console_main() -> None:
    try:
        from neuralcodec.cli.main import console_main as main
    except KeyboardInterrupt:
        sys.stderr.write("aec: error: interrupted\n")
        sys.exit(130)
    main()
