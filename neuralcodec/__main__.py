"""``python -m neuralcodec`` runs the ``aec`` command line."""

from _aec_launcher import console_main

console_main()
