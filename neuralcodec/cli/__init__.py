"""The ``aec`` command line."""

from .main import console_main, main, run

__all__ = ["console_main", "main", "run"]
