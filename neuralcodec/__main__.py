"""``python -m neuralcodec`` runs the ``aec`` command line."""

import sys

try:
    from .cli import console_main
except KeyboardInterrupt:  # Ctrl-C while the command line loads: no traceback
    print("aec: error: interrupted", file=sys.stderr)
    sys.exit(130)

console_main()
