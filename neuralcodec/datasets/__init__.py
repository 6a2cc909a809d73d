"""Coding a whole data set: in this process or on a Ray cluster, resumable, with a
manifest.

>>> from neuralcodec.datasets import encode_dataset, decode_dataset
>>> summary = encode_dataset(["photos/"], "compressed/", recursive=True, quality=60,
...                          engine="ray")            # or engine="local" (the default)
>>> encode_dataset("photos/", "small/", EncodeOptions(bpp=0.3, effort=2))
>>> print(summary)                                    # files, failures, bytes, images/s
>>> decode_dataset(["compressed/"], "restored/", recursive=True)

The outputs mirror the inputs' folders under the destination, are written atomically,
and are listed with their sizes and status in ``DESTINATION/manifest.csv``. A rerun
skips every output that exists and parses, so an interrupted run resumes where it
stopped. Files that fail are recorded there, not raised. :func:`code_files` codes files
whose outputs the caller chose by the same rules, without a manifest (``aec encode
a.png b.png``).

    plan.py        the inputs (folders, lists) and their mirrored outputs
    manifest.py    a row per file; the CSV, rewritten atomically as the run goes
    worker.py      codes tasks of files with a codec loaded once (here or as an actor)
    ray_engine.py  Ray actors, task dispatch, retries of tasks whose worker died

Ray is optional (``pip install 'neuralcodec[ray]'``) and imported only by ``engine="ray"``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..codec.options import DecodeOptions, EncodeOptions, with_fields
from ..errors import AecError
from ..format.container import AEC_SUFFIX
from ..io.files import check_folder
from .manifest import (
    DONE,
    FAILED,
    MANIFEST_NAME,
    SKIPPED,
    Recorder,
    Row,
    check_replaceable,
    previous_psnr,
)
from .plan import Item, batches, plan_items, read_list
from .worker import Settings

ENGINES = ("local", "ray")
Sources = str | Path | Iterable[str | Path]
Progress = Callable[[int, int], None]  # (files finished, files in all)
Report = Callable[[Row], None]  # each file's row, as it finishes


@dataclass
class DatasetSummary:
    """What a data-set run did: a row per file (as in the manifest, None where there is
    none: :func:`code_files`) and its wall time."""

    rows: list[Row]
    manifest: Path | None
    seconds: float

    def _count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows)

    @property
    def files(self) -> int:
        return len(self.rows)

    @property
    def done(self) -> int:
        return self._count(DONE)

    @property
    def skipped(self) -> int:
        return self._count(SKIPPED)

    @property
    def failed(self) -> int:
        return self._count(FAILED)

    @property
    def failures(self) -> list[Row]:
        return [row for row in self.rows if row.status == FAILED]

    @property
    def bytes(self) -> int:
        """Bytes of the .aec files of every file done or skipped."""
        return sum(row.bytes or 0 for row in self.rows if row.status != FAILED)

    @property
    def images_per_second(self) -> float:
        """Files coded (not skipped) per second of the whole run."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        text = (f"{self.files} files: {self.done} coded, {self.skipped} skipped, "
                f"{self.failed} failed; {self.bytes} bytes of .aec; "
                f"{self.images_per_second:.2f} images/s ({self.seconds:.1f} s)")
        return text if self.manifest is None else f"{text}; manifest {self.manifest}"


def encode_dataset(
    sources: Sources,
    destination: str | Path,
    options: EncodeOptions | None = None,
    *,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    recursive: bool = False,
    files_from: str | Path | None = None,
    force: bool = False,
    measure_psnr: bool = False,
    task_size: int | None = None,
    progress: Progress | None = None,
    report: Report | None = None,
    **fields: Any,
) -> DatasetSummary:
    """Encode every image of ``sources`` (folders, files; plus the paths listed in
    ``files_from``, ``-`` for standard input) into ``.aec`` files under ``destination``.

    How each image is encoded is ``options`` (an :class:`EncodeOptions`), or its fields
    given as keywords (``quality=60``, ``bpp=0.5``, ``effort=2``, ``model=...``; they
    change those of ``options`` where both are given). ``engine="ray"`` codes on a Ray
    cluster: ``address`` joins one (``"auto"``: the running one), else one is started
    on this machine; ``workers`` is then the number of actors (default: one per CPU, or
    per GPU with ``device="cuda"``) and ``threads`` each one's transform threads
    (default: its share of the CPUs). With ``engine="local"``, ``workers`` is the
    codec's tile processes. ``task_size`` files go to a worker at once. Outputs that
    exist and parse are skipped; ``force`` replaces existing outputs that do not parse
    or were made with another model or quality. ``measure_psnr`` adds each file's RGB
    PSNR to its row. ``progress`` is called with (files finished, files in all) and
    ``report`` with each file's row, as they finish.
    """
    from ..io.images import image_suffixes

    settings = Settings(with_fields(EncodeOptions, options, fields), force=force,
                        measure_psnr=measure_psnr)
    return _run(settings, sources, destination, AEC_SUFFIX, image_suffixes(), engine,
                address, workers, threads, recursive, files_from, task_size, progress,
                report)


def decode_dataset(
    sources: Sources,
    destination: str | Path,
    options: DecodeOptions | None = None,
    *,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    recursive: bool = False,
    files_from: str | Path | None = None,
    force: bool = False,
    task_size: int | None = None,
    progress: Progress | None = None,
    report: Report | None = None,
    **fields: Any,
) -> DatasetSummary:
    """Decode every ``.aec`` file of ``sources`` into images under ``destination``, as
    ``options`` (a :class:`DecodeOptions`) or its fields as keywords ask (``fmt="webp"``,
    ``partial=True``: the intact tiles of damaged files, as ``Codec.decode_partial``;
    ``output_quality=80`` for JPEG, WebP or AVIF); the other arguments are those of
    :func:`encode_dataset`. Images saved in a format that loses pixels get one note
    (an :class:`AecWarning`) for the run."""
    options = with_fields(DecodeOptions, options, fields)
    fmt = options.pillow_format
    options.saving_quality(fmt)  # an output quality the format takes none of: before work
    summary = _run(Settings(options, force=force), sources, destination, options.suffix,
                   frozenset({AEC_SUFFIX}), engine, address, workers, threads, recursive,
                   files_from, task_size, progress, report)
    note = options.note(str(destination), fmt) if summary.done else None
    if note is not None:
        warnings.warn(note, stacklevel=2)
    return summary


def _run(settings: Settings, sources: Sources, destination: str | Path, out_suffix: str,
         wanted: frozenset[str], engine: str, address: str | None, workers: int | None,
         threads: int | None, recursive: bool, files_from: str | Path | None,
         task_size: int | None, progress: Progress | None, report: Report | None
         ) -> DatasetSummary:
    if engine not in ENGINES:
        raise AecError(f"unknown engine '{engine}' (choose from {', '.join(ENGINES)})")
    if address is not None and engine != "ray":
        raise AecError("a Ray address needs engine ray")
    for name, value in (("workers", workers), ("threads", threads), ("task_size", task_size)):
        if value is not None and value < 1:
            raise AecError(f"{name} must be at least 1, got {value}", field=name)
    ray = None
    if engine == "ray":
        from . import ray_engine

        ray = ray_engine.import_ray()  # before any work
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if files_from is not None:
        sources += read_list(files_from)
    dest = Path(destination)
    if dest.exists() and not dest.is_dir():
        raise AecError(f"{dest}: the destination must be a folder")
    items = plan_items(sources, dest, out_suffix, wanted, recursive)
    manifest_path = dest / MANIFEST_NAME
    check_replaceable(manifest_path, settings.force)
    check_folder(dest, make=True)  # a destination that takes no files: before any work
    t0 = time.perf_counter()  # the run's time includes starting or joining a cluster
    started = ray is not None and ray_engine.connect(ray, address)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if started:
            ray.shutdown()
        raise AecError(f"{dest}: cannot make the folder ({exc.strerror})") from None
    recorder = Recorder(items, manifest_path, previous_psnr(manifest_path), progress,
                        report=report)
    try:
        if ray is not None:
            ray_engine.run(ray, items, settings, recorder, workers=workers,
                           threads=threads, task_size=task_size)
        else:
            _run_local(items, settings, recorder, workers, threads, task_size)
    finally:
        if recorder.done:  # what was finished, also when interrupted
            recorder.flush()
        if started:
            ray.shutdown()
    return DatasetSummary(recorder.finished(), manifest_path, time.perf_counter() - t0)


def code_files(items: list[Item], settings: Settings, *, workers: int | None = None,
               threads: int | None = None, progress: Progress | None = None,
               report: Report | None = None) -> DatasetSummary:
    """Code files whose outputs the caller chose (``aec encode a.png b.png``), in this
    process, by the data-set rules (an output that exists and parses is skipped; one that
    does not, or was made otherwise, fails unless ``settings.force``), with no manifest.
    ``workers`` is the codec's tile processes; the rest as in :func:`encode_dataset`."""
    t0 = time.perf_counter()
    recorder = Recorder(items, None, {}, progress, report=report)
    _run_local(items, settings, recorder, workers, threads, None)
    return DatasetSummary(recorder.finished(), None, time.perf_counter() - t0)


def _run_local(items: list, settings: Settings, recorder: Recorder, workers: int | None,
               threads: int | None, task_size: int | None) -> None:
    from .worker import Worker

    worker = Worker(settings, threads, workers)
    try:
        for batch in batches(items, task_size or 1):
            recorder.add(worker.run(batch))
    finally:
        worker.close()


__all__ = ["DatasetSummary", "DecodeOptions", "EncodeOptions", "Item", "Row", "Settings",
           "code_files", "decode_dataset", "encode_dataset"]
