"""Which files a data-set run codes and where each output goes.

Folders are searched for inputs (image files to encode, ``.aec`` files to decode);
``--recursive`` also searches their subfolders. Each output mirrors its input's path
relative to the folder it was found in, so equal names in different folders never
collide; loose files (named directly or listed in ``--files-from``) mirror their paths
relative to the deepest folder holding them all.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import AecError
from ..io.files import STDIO, check_input, reading


@dataclass(frozen=True)
class Item:
    """One file to code: its input, its output and the output relative to the
    destination (how the manifest names it)."""

    input: str
    output: str
    relative: str


def read_list(path: str | Path) -> list[str]:
    """The paths listed in a file, one a line (blank lines are left); ``-`` reads
    standard input."""
    if str(path) == STDIO:
        text = sys.stdin.read()
    else:
        with reading(path):
            try:
                text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
            except (FileNotFoundError, IsADirectoryError, PermissionError):
                raise
            except OSError as exc:
                raise AecError(f"{path}: cannot read ({exc.strerror})") from None
    return [line for line in text.splitlines() if line.strip()]


def plan_items(sources: Iterable[str | Path], destination: str | Path, out_suffix: str,
               wanted: frozenset[str], recursive: bool = False) -> list[Item]:
    """Inputs and their outputs under ``destination``, refusing (before any work) an
    input named that is not there, an input that is also an output and two inputs that
    would share an output."""
    dest = Path(destination)
    dest_real = os.path.realpath(dest)
    found: list[tuple[str, str]] = []  # (input, output relative to destination)
    loose: list[str] = []
    for source in sources:
        source = str(source)
        if source == STDIO:
            raise AecError("standard input (-) cannot be part of a data set; list files "
                           "with --files-from - instead")
        if os.path.isdir(source):
            for path in _walk(source, wanted, recursive, dest_real):
                found.append((path, os.path.relpath(path, source)))
        else:
            check_input(source)  # a missing file is refused before any work
            loose.append(source)
    if loose:
        absolute = [os.path.abspath(p) for p in loose]
        common = os.path.commonpath([os.path.dirname(p) for p in absolute])
        found += [(p, os.path.relpath(a, common)) for p, a in zip(loose, absolute, strict=True)]
    if not found:
        more = "" if recursive else " (--recursive also searches subfolders)"
        raise AecError(f"no input files found{more}")
    items = [Item(src, str(dest / rel), rel) for src, rel in
             ((src, str(Path(rel).with_suffix(out_suffix))) for src, rel in found)]
    _check_outputs(items)
    return items


def _walk(folder: str, wanted: frozenset[str], recursive: bool, skip: str) -> Iterator[str]:
    """The wanted files of a folder in sorted order (subfolders too if ``recursive``),
    leaving out the destination folder when it lies inside."""
    for root, dirs, files in os.walk(folder, onerror=_walk_error):
        dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(root, d)) != skip
                         ) if recursive else []
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() in wanted:
                yield os.path.join(root, name)


def _walk_error(exc: OSError) -> None:
    raise AecError(f"{exc.filename}: cannot list the folder ({exc.strerror})")


def _check_outputs(items: list[Item]) -> None:
    inputs = {os.path.abspath(item.input): item.input for item in items}
    seen: dict[str, str] = {}
    for item in items:
        key = os.path.abspath(item.output)
        if key in inputs:
            raise AecError(f"{inputs[key]}: would be overwritten by the output of "
                           f"{item.input}")
        if key in seen:
            raise AecError(f"{seen[key]} and {item.input} would both be written to "
                           f"{item.output}; nothing was written")
        seen[key] = item.input


def batches(items: list[Item], size: int) -> list[list[Item]]:
    """Items in consecutive tasks of ``size``."""
    return [items[i:i + size] for i in range(0, len(items), size)]
