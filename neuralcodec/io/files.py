"""Reading and writing files: one-line errors, standard input and output, and atomic
writes that never leave a half-written file nor replace one unasked."""

from __future__ import annotations

import errno
import io
import os
import select
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

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


STDIO = "-"  # a path of "-" is standard input or output


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes; ``-`` reads standard input."""
    if str(path) == STDIO:
        return sys.stdin.buffer.read()
    with reading(path):
        try:
            return Path(path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except OSError as exc:
            raise AecError(f"{path}: cannot read ({exc.strerror})") from None


# What the API decodes: the file's bytes, its path or a binary file object.
DataSource = bytes | bytearray | memoryview | str | Path | IO[bytes]


def as_bytes(source: DataSource) -> bytes:
    """The bytes of a file given as bytes, a path (``-``: standard input) or a binary
    file object."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, Path)):
        return read_bytes(source)
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, bytes):
            return data
    raise AecError(f"cannot read .aec data from a {type(source).__name__}: give bytes, a "
                   "path or a binary file object")


def check_stdout() -> None:
    """Refuse binary output to a terminal (as zstd does)."""
    if sys.stdout.isatty():
        raise AecError("will not write binary data to a terminal: redirect standard output "
                       "or name an output file")


def write_stdout(data: bytes) -> None:
    """Binary output to standard output, refused on a terminal; every byte is written, or
    an AecError says how many were."""
    check_stdout()
    try:
        sys.stdout.flush()  # what was written before, in order
    except OSError as exc:
        raise write_error(STDOUT_NAME, exc, 0, len(data)) from None
    # The unbuffered file under it, so that each count is what the pipe or file took.
    out = sys.stdout.buffer
    write_all(getattr(out, "raw", out), data, STDOUT_NAME)


STDOUT_NAME = "standard output"


def write_all(f: IO[bytes], data: bytes | memoryview, name: str) -> None:
    """Write every byte of ``data`` to ``f``, a file without a buffer of its own (a pipe,
    device or FIFO takes part of a write at a time), or raise an AecError saying how many
    bytes it took. A buffered file's ``write`` reports a reader gone mid-write as a short
    count, not an error: ``f.write(data)`` alone can lose the end silently."""
    view = memoryview(data)
    done = 0
    try:
        while done < len(view):
            n = f.write(view[done:])
            if n is None:  # a non-blocking descriptor that is full: wait for room
                select.select([], [f], [])
                continue
            if n <= 0:
                raise OSError(errno.EIO, "the output took no more bytes")
            done += n
        f.flush()
    except OSError as exc:
        raise write_error(name, exc, done, len(data)) from None


def write_error(name: str, exc: OSError, done: int | None = None,
                total: int | None = None) -> AecError:
    """The one-line error of a write to ``name`` that failed (after ``done`` of ``total``
    bytes, where they are known)."""
    if isinstance(exc, BrokenPipeError):
        if total is None:
            return AecError(f"{name}: closed before all output was written (broken pipe)")
        return AecError(f"{name}: closed after {done} of {total} bytes were written "
                        "(broken pipe)")
    counted = "" if total is None else f"; {done} of {total} bytes written"
    return AecError(f"{name}: cannot write ({exc.strerror}{counted})")


def stdout_failure() -> AecError | None:
    """Why standard output cannot take what is still in its buffer (a reader gone, a
    full disk), or None if it can: for the end of a command, when output that never got
    out must fail it."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        return write_error(STDOUT_NAME, exc)
    return None


def check_new(path: str | Path, overwrite: bool) -> None:
    """Refuse an existing output file unless ``overwrite`` (devices and FIFOs are written
    through, never replaced, so they are always allowed)."""
    if overwrite or str(path) == STDIO:
        return
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AecError(f"{path}: cannot check the output ({exc.strerror})") from None
    if stat.S_ISREG(st.st_mode):
        raise _exists(path)


def check_input(path: str | Path) -> None:
    """Refuse, before any work, an input that is not there or cannot be read (``-`` is
    standard input)."""
    if str(path) == STDIO:
        return
    if not os.path.exists(path):
        raise AecError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise AecError(f"{path}: permission denied")


def check_output(path: str | Path, overwrite: bool, make_folder: bool = False) -> None:
    """Refuse, before any work, an output that could not be written: binary data to a
    terminal, an existing file without ``overwrite``, a directory, a folder that does not
    exist (``make_folder``: that cannot be made) or takes no new files. Devices and FIFOs
    are written directly, so their folder does not matter; a symlink is written through,
    so its target's folder does."""
    if str(path) == STDIO:
        check_stdout()
        return
    check_new(path, overwrite)
    path = Path(path)
    st = _existing(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        return
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    check_folder(target.parent if str(target.parent) else Path("."), make_folder, path)


def check_folder(folder: str | Path, make: bool = False, output: str | Path | None = None
                 ) -> None:
    """Refuse a folder for outputs that is not one or takes no new files; one that does
    not exist is refused unless ``make``, and then its nearest existing parent must take
    it. ``output`` names the file the folder is for, in the messages."""
    folder = Path(folder)
    where = f"{output}: " if output is not None else ""
    existing = folder
    while not os.path.exists(existing):
        if not make:
            raise AecError(f"{where}folder {folder} does not exist")
        if existing.parent == existing:
            break
        existing = existing.parent
    if not os.path.isdir(existing):
        raise AecError(f"{where}{existing} is not a folder")
    # W_OK | X_OK: a new entry needs both; access() also sees a read-only file system.
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AecError(f"{where}cannot write in {existing} (permission denied)")


def _existing(path: Path) -> os.stat_result | None:
    """What is at ``path`` (followed through links), None if nothing; a directory is
    refused, as no output can replace one."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        raise AecError(f"{path}: is a directory")
    return st


def _exists(path: str | Path) -> AecError:
    return AecError(f"{path}: already exists, not replaced", field="overwrite")


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None],
                 overwrite: bool = True) -> None:
    """Write ``path`` so that it is never left half-written: through a temporary file in
    the same folder, put in place only once complete. A symlink is written through (it
    stays a link to the new file); a device or FIFO is written directly. Without
    ``overwrite`` an existing file is refused, even one that appears meanwhile."""
    path = Path(path)
    check_new(path, overwrite)
    st = _existing(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        # Made whole first, then written unbuffered: a device or FIFO takes part of a
        # write at a time, and every byte must get through (write_all).
        buffer = io.BytesIO()
        write(buffer)
        try:
            with reading(path), open(path, "wb", buffering=0) as f:
                write_all(f, buffer.getbuffer(), str(path))
        except OSError as exc:  # e.g. opening it
            raise AecError(f"{path}: cannot write ({exc.strerror})") from None
        return
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    except FileNotFoundError as exc:
        if folder.is_dir():  # e.g. a folder of a virtual file system such as /proc
            raise AecError(f"{path}: cannot create a file in {folder} ({exc.strerror})"
                           ) from None
        raise AecError(f"{path}: folder {folder} does not exist") from None
    except PermissionError:
        raise AecError(f"{path}: permission denied") from None
    except OSError as exc:
        raise AecError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_new(tmp, target, path)
    except OSError as exc:
        _remove(tmp)
        raise AecError(f"{path}: cannot write ({exc.strerror})") from None
    except BaseException:
        _remove(tmp)
        raise


def _link_new(tmp: str, target: Path, path: Path) -> None:
    """Put ``tmp`` at ``target`` only if nothing is there (a hard link fails if it is)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise _exists(path) from None
    except OSError:  # no hard links on this file system: check, then rename
        if os.path.lexists(target):
            raise _exists(path) from None
        os.replace(tmp, target)
        return
    _remove(tmp)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
