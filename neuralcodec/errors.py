"""The one error type users see: every expected failure raises it with a clear message."""


class AecError(Exception):
    """A user-facing failure (bad input, damaged file, missing model)."""


class CorruptFileError(AecError):
    """An .aec file that is truncated, damaged or not an .aec file at all."""
