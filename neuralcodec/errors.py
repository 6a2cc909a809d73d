"""The error type users see (every expected failure raises it with a clear message) and
the warning category of notes."""

# The distribution's name on the package index: every install hint is built from it.
DISTRIBUTION = "aec"


def install_hint(extra: str) -> str:
    """The command that installs an extra: ``pip install 'aec[bench]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


# PyTorch (and CompressAI) are an extra: coding on a CPU needs neither.
TORCH_PACKAGES = ("torch", "compressai")
TORCH_INSTALL = install_hint("torch")


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


def torch_missing(exc: ModuleNotFoundError) -> bool:
    """Whether ``exc`` is the absence of PyTorch or CompressAI."""
    return (exc.name or "").split(".")[0] in TORCH_PACKAGES


def needs_torch(what: str) -> AecError:
    """The error for ``what`` (e.g. "encoder effort above 1") without PyTorch."""
    return AecError(f"{what} needs PyTorch, which is not installed: {TORCH_INSTALL}")
