"""The manifest of a data-set run: a row per file, written atomically as CSV."""

from __future__ import annotations

import csv
import io
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AecError, AecWarning
from ..io.files import atomic_write
from .plan import Item

MANIFEST_NAME = "manifest.csv"
COLUMNS = ("input", "output", "width", "height", "bytes", "bpp", "model", "quality",
           "status", "error", "psnr", "notes")
DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass
class Row:
    """What became of one file. ``bytes`` and ``bpp`` are those of the .aec file (the
    output of encode, the input of decode); ``output`` is relative to the destination."""

    input: str
    output: str
    status: str
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    bpp: float | None = None
    model: str = ""
    quality: float | None = None
    error: str = ""
    psnr: float | None = None
    notes: list[str] = field(default_factory=list)
    # For the per-file report lines, not the CSV: the decoded image's mode, the seconds
    # the file took (None: skipped or failed).
    mode: str = ""
    seconds: float | None = None
    # ... the maximum error K of the file's residual layer (None: none), and the largest
    # error measured in its decoding (with -v).
    residual: int | None = None
    max_error: int | None = None

    @classmethod
    def failed(cls, item: Item, error: str) -> Row:
        return cls(item.input, item.relative, FAILED, error=error)

    def cells(self) -> list[str]:
        def number(value, form: str) -> str:
            return "" if value is None else format(value, form)

        return [self.input, self.output, number(self.width, "d"), number(self.height, "d"),
                number(self.bytes, "d"), number(self.bpp, ".4f"), self.model,
                number(self.quality, "g"), self.status, self.error, number(self.psnr, ".2f"),
                "; ".join(self.notes)]


def check_replaceable(path: Path, force: bool) -> None:
    """Refuse to replace a file named like the manifest that is not one, unless forced."""
    if force or not path.exists():
        return
    try:
        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        header = []
    if tuple(header[:len(COLUMNS)]) != COLUMNS:
        raise AecError(f"{path}: exists and is not an aec manifest, not replaced",
                       field="overwrite")


def previous_psnr(path: Path) -> dict[str, float]:
    """PSNR by output of an earlier run's manifest (skipped files keep their figure)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return {row["output"]: float(row["psnr"]) for row in csv.DictReader(f)
                    if row.get("psnr")}
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, ValueError):
        return {}


def write(path: Path, rows: list[Row]) -> None:
    """The manifest, replaced atomically."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(COLUMNS)
    out.writerows(row.cells() for row in rows)
    data = buffer.getvalue().encode("utf-8", errors="surrogateescape")
    atomic_write(path, lambda f: f.write(data), overwrite=True)


class Recorder:
    """Collects rows in the inputs' order, reports progress (and each row to ``report``)
    and rewrites the manifest now and then (at most every ``interval`` seconds, and never
    taking over a tenth of the time); with no ``path``, there is no manifest."""

    def __init__(self, items: list[Item], path: Path | None, measured: dict[str, float],
                 progress: Callable[[int, int], None] | None, interval: float = 30.0,
                 report: Callable[[Row], None] | None = None):
        self.order = {item.relative: i for i, item in enumerate(items)}
        self.rows: list[Row | None] = [None] * len(items)
        self.done = 0
        self.path = path
        self.measured = measured
        self.progress = progress
        self.report = report
        self.interval = interval
        self._last_write = time.monotonic()
        if progress:
            progress(0, len(items))

    def add(self, rows: list[Row]) -> None:
        for row in rows:
            for note in row.notes:  # the worker's notes, as if made here
                warnings.warn(note, AecWarning, stacklevel=2)
            if row.status == SKIPPED and row.psnr is None:
                row.psnr = self.measured.get(row.output)
            self.rows[self.order[row.output]] = row
            if self.report:
                self.report(row)
        self.done += len(rows)
        if self.progress:
            self.progress(self.done, len(self.rows))
        if time.monotonic() - self._last_write > self.interval:
            self.flush()

    def finished(self) -> list[Row]:
        return [row for row in self.rows if row is not None]

    def flush(self) -> None:
        if self.path is None:
            return
        t0 = time.monotonic()
        write(self.path, self.finished())
        now = time.monotonic()
        self._last_write = now
        self.interval = max(self.interval, 10 * (now - t0))
