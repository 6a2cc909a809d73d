"""The one error type users see: every expected failure raises it with a clear message."""


class AecError(Exception):
    """A user-facing failure (bad input, damaged file, missing model). ``field`` names the
    parameter to change, where one would help (the CLI names its option)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class CorruptFileError(AecError):
    """An .aec file that is truncated, damaged or not an .aec file at all."""
