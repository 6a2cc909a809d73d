"""The error type users see (every expected failure raises it with a clear message) and
the warning category of notes."""


class AecError(Exception):
    """A user-facing failure (bad input, damaged file, missing model). ``field`` names the
    parameter to change, where one would help (the CLI names its option)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class CorruptFileError(AecError):
    """An .aec file that is truncated, damaged or not an .aec file at all."""


class AecWarning(UserWarning):
    """A note about a lossy step the user may want to know of (a mode converted, 16-bit
    samples reduced, alpha dropped). Issued with :func:`warnings.warn`, so programs can
    filter or catch it; the CLI prints it as ``aec: note: ...`` unless ``--quiet``."""
