"""The error type users see (every expected failure raises it with a clear message) and
the warning category of notes."""

# The name on the package index (`aec` there is another project); the command stays
# `aec` and the import `neuralcodec`.
DISTRIBUTION = "neuralcodec"


def install_command(extra: str) -> str:
    """What a user runs to add one of the package's extras, e.g. the torch extra."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


# PyTorch (and CompressAI) are an extra: coding on a CPU needs neither.
TORCH_PACKAGES = ("torch", "compressai")
TORCH_INSTALL = install_command("torch")


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


class PrecisionWarning(AecWarning):
    """A note that input samples lost precision on the way in (16-bit samples reduced to
    8): a lossless or near-lossless encode refuses such an input instead."""


def torch_installed() -> bool:
    """Whether the torch extra's packages are importable (found, not imported)."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in TORCH_PACKAGES)


def torch_missing(exc: ModuleNotFoundError) -> bool:
    """Whether ``exc`` is the absence of PyTorch or CompressAI."""
    return (exc.name or "").split(".")[0] in TORCH_PACKAGES


def needs_torch(what: str) -> AecError:
    """The error for ``what`` (e.g. "encoder effort above 1") without PyTorch."""
    return AecError(f"{what} needs PyTorch, which is not installed: {TORCH_INSTALL}")
