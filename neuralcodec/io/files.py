"""Reading and writing files: one-line errors, and atomic writes (never a half-written
file)."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import AecError


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Turn the usual failures of opening a file into one-line AecErrors."""
    try:
        yield
    except FileNotFoundError:
        raise AecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AecError(f"{path}: is a directory") from None
    except PermissionError:
        raise AecError(f"{path}: permission denied") from None


def read_bytes(path: str | Path) -> bytes:
    with reading(path):
        try:
            return Path(path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except OSError as exc:
            raise AecError(f"{path}: cannot read ({exc.strerror})") from None


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write through a temporary file in the same folder, renamed into place on success."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except FileNotFoundError:
        raise AecError(f"{path}: folder {folder} does not exist") from None
    except PermissionError:
        raise AecError(f"{path}: permission denied") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
