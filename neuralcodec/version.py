"""This release's version, and versions as comparable numbers.

The one place the version is written: ``pyproject.toml`` reads it from here, the
package exports it as ``neuralcodec.__version__``, and files record the lowest version
that decodes them (:mod:`neuralcodec.format.requirement`).
"""

from __future__ import annotations

__version__ = "0.3.0"

Version = tuple[int, int, int]


def parse_version(text: str) -> Version:
    """``"0.2.0"`` as ``(0, 2, 0)``; a ValueError for anything else."""
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a MAJOR.MINOR.PATCH version: {text!r}")
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch


def version_text(version: Version) -> str:
    return ".".join(map(str, version))


VERSION: Version = parse_version(__version__)
