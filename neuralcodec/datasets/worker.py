"""One worker of a data-set run: codes tasks of files with a codec loaded once.

The same class runs in this process (the local engine) and as a Ray actor. A file whose
output already exists and parses is skipped without loading any model; a file that
fails becomes a ``failed`` row, so only a failure of the worker itself (its codec cannot
be set up) ends a run.
"""

from __future__ import annotations

import glob
import os
import stat
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import metrics
from ..codec.options import DecodeOptions, EncodeOptions
from ..errors import AecError, AecWarning, CorruptFileError
from ..format import container
from ..format.chunks import CHUNK_EXIF
from ..format.inspect import residual_layer, residual_max_error
from ..format.quality import to_stored
from ..io.files import atomic_write, read_bytes, reading
from ..io.metadata import stripped_exif
from .manifest import DONE, SKIPPED, Row
from .plan import Item

if TYPE_CHECKING:

    from ..codec import Codec


@dataclass(frozen=True)
class Settings:
    """What a run asks of every file: how to code it, and the run's own choices."""

    options: EncodeOptions | DecodeOptions
    force: bool = False  # replace outputs that exist but are not what was asked
    measure_psnr: bool = False  # encode: each file's RGB PSNR in its row

    @property
    def direction(self) -> str:
        return "encode" if isinstance(self.options, EncodeOptions) else "decode"


class SetupError(AecError):
    """The worker's codec cannot be made or loaded: a failure of the run, not a file."""


class Worker:
    """Codes lists of items; ``threads`` sets the transforms' threads, ``tile_workers``
    the codec's tile processes (1 codes in this process)."""

    def __init__(self, settings: Settings, threads: int | None = None,
                 tile_workers: int | None = None):
        self.settings = settings
        self.threads = threads
        self.tile_workers = tile_workers
        self._codec: Codec | None = None
        self._expected: tuple[str, bytes] | None = None

    @property
    def codec(self) -> Codec:
        """The codec, made (and its threads set) when a file first needs it."""
        if self._codec is None:
            if self.threads is not None:
                from ..codec.threads import set_threads

                set_threads(self.threads)
            try:
                codec = self.settings.options.codec(workers=self.tile_workers)
                if self.settings.direction == "encode":
                    codec.load()  # a model that cannot load fails the run, not each file
            except AecError as exc:
                raise SetupError(str(exc), exc.field) from None
            self._codec = codec
        return self._codec

    def run(self, items: list[Item]) -> list[Row]:
        """A row for each item, in order."""
        rows = []
        for item in items:
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", AecWarning)
                try:
                    row = self._encode(item) if self.settings.direction == "encode" \
                        else self._decode(item)
                except SetupError:
                    raise
                except AecError as exc:
                    row = Row.failed(item, str(exc))
                except Exception as exc:  # a bug or a library's surprise: this file only
                    row = Row.failed(item, f"internal error: {type(exc).__name__}: {exc}")
            row.notes += [str(w.message) for w in caught if issubclass(w.category, AecWarning)]
            if row.status == DONE:
                row.seconds = time.perf_counter() - t0
            rows.append(row)
        return rows

    def close(self) -> None:
        if self._codec is not None:
            self._codec.close()

    # -- encoding ------------------------------------------------------------------------

    def _encode(self, item: Item) -> Row:
        from ..codec.prepare import prepare_image

        options = self.settings.options
        assert isinstance(options, EncodeOptions)
        existing = self._existing_aec(item)
        if isinstance(existing, Row):
            return existing
        prepared = prepare_image(item.input, options.max_pixels, options.frame,
                                 exact=options.residual_error is not None)
        codec = self.codec  # loaded only once a file needs it
        data, q = codec.encode_with(prepared, options)
        _make_folder(item)
        atomic_write(item.output, lambda f: f.write(data), overwrite=existing)
        w, h = prepared.image.size
        row = Row(item.input, item.relative, DONE, w, h, len(data),
                  metrics.bpp(len(data), w, h), codec.coder().name, q)
        row.residual = residual_max_error(data)
        if self.settings.measure_psnr:
            decoded = codec.decode(data)
            row.psnr = prepared.psnr(decoded)
            if row.residual is not None:
                row.max_error = prepared.largest_error(decoded)
        return row

    def _expected_model(self) -> tuple[str, bytes]:
        """Name and fingerprint of the encoding model, without loading it."""
        if self._expected is None:
            from ..families.zoo import DEFAULT_MODEL, find_model

            try:
                info = find_model(self.settings.options.model or DEFAULT_MODEL)
            except AecError as exc:
                raise SetupError(str(exc)) from None
            self._expected = info.name, info.fingerprint
        return self._expected

    def _existing_aec(self, item: Item) -> Row | bool:
        """A skipped row for an output that exists and parses (and matches the model and
        quality asked for); otherwise whether an existing output is to be replaced."""
        if not _exists(item.output):
            return False
        options = self.settings.options
        assert isinstance(options, EncodeOptions)
        force, quality = self.settings.force, options.at_quality
        data = read_bytes(item.output)
        try:
            parsed = container.unpack(data)
        except CorruptFileError as exc:
            return _replace_or_fail(item, f"is not a valid .aec file ({exc})", force)
        header = parsed.header
        name, fingerprint = self._expected_model()
        if (header.model, header.fingerprint) != (name, fingerprint):
            return _replace_or_fail(item, f"was made with model '{header.model}' "
                                    f"{header.fingerprint.hex()}, not '{name}' "
                                    f"{fingerprint.hex()}", force)
        layer = residual_layer(parsed.tiles)
        have = None if layer is None else layer.max_error
        if have != options.residual_error and (options.residual_error is not None
                                               or options.target is None):
            def words(k: int | None) -> str:
                return "without the residual layer" if k is None else f"with maximum error {k}"

            return _replace_or_fail(item, f"was made {words(have)}, not "
                                    f"{words(options.residual_error)}", force)
        if quality is not None:  # coded at a quality, not to a target
            asked = to_stored(quality)
            if header.quality != asked:
                return _replace_or_fail(item, f"was made at quality {header.quality_value:g}"
                                        f", not {asked / 100:g}", force)
        exif = parsed.chunks.get(CHUNK_EXIF)
        if options.strip and exif and stripped_exif(exif) != exif:  # never skipped unstripped
            return _replace_or_fail(item, "holds the EXIF metadata (GPS, camera, dates) "
                                    "that strip drops", force)
        row = Row(item.input, item.relative, SKIPPED, header.width, header.height,
                  len(data), metrics.bpp(len(data), header.width, header.height),
                  header.model, header.quality_value)
        row.residual = have
        return row

    # -- decoding ------------------------------------------------------------------------

    def _decode(self, item: Item) -> Row:
        from ..io.images import save_image

        options = self.settings.options
        assert isinstance(options, DecodeOptions)
        with reading(item.input), open(item.input, "rb") as f:
            header = container.read_header(f)
        existing = self._existing_image(item, header)
        if isinstance(existing, Row):
            return existing
        data = read_bytes(item.input)
        codec = self.codec
        notes = []
        if options.partial:
            image, report = codec.decode_partial(data)
            if len(report.lost_tiles) == report.tiles:
                raise AecError(f"nothing could be recovered: {report}")
            if report.lost_tiles or report.problems:
                notes.append(f"{item.input}: {report}")
        else:
            image = codec.decode(data)
        _make_folder(item)
        fmt = options.pillow_format
        save_image(image, item.output, existing, fmt, options.saving_quality(fmt))
        return Row(item.input, item.relative, DONE, image.width, image.height, len(data),
                   metrics.bpp(len(data), image.width, image.height), header.model,
                   header.quality_value, notes=notes, mode=image.mode)

    def _existing_image(self, item: Item, header: container.Header) -> Row | bool:
        """A skipped row for an output image that opens whole at the header's size;
        otherwise whether an existing output is to be replaced."""
        from ..io.images import open_image

        if not _exists(item.output):
            return False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AecWarning)
                size = open_image(item.output, self.settings.options.max_pixels).size
        except AecError as exc:
            return _replace_or_fail(item, f"does not open as an image ({exc})",
                                    self.settings.force)
        if size != (header.width, header.height):
            return _replace_or_fail(item, f"is {size[0]}x{size[1]}, not the file's "
                                    f"{header.width}x{header.height}", self.settings.force)
        length = os.stat(item.input).st_size
        return Row(item.input, item.relative, SKIPPED, header.width, header.height, length,
                   metrics.bpp(length, header.width, header.height), header.model,
                   header.quality_value)


def _exists(path: str) -> bool:
    """Whether an output is there; something other than a file is refused."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise AecError(f"{path}: cannot check the output ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise AecError(f"{path}: exists and is not a regular file")
    return True


def _replace_or_fail(item: Item, problem: str, force: bool) -> bool:
    if force:
        return True
    raise AecError(f"{item.output}: exists but {problem}; not replaced (-f replaces it)")


def _make_folder(item: Item) -> None:
    folder = Path(item.output).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AecError(f"{folder}: cannot make the folder ({exc.strerror})") from None


def remove_leftovers(items: list[Item]) -> None:
    """Delete the temporary files a killed worker left beside these outputs."""
    for item in items:
        folder, name = os.path.split(item.output)
        for leftover in glob.glob(os.path.join(glob.escape(folder or "."),
                                               f".{glob.escape(name)}.*.part")):
            try:
                os.unlink(leftover)
            except OSError:
                pass


__all__ = ["Settings", "SetupError", "Worker", "remove_leftovers"]
