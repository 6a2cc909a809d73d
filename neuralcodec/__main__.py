"""``python -m neuralcodec`` runs the ``aec`` command line."""

from .cli import console_main

console_main()
