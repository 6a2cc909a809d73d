"""Pillow plugin: ``Image.open("x.aec")`` and ``im.save("x.aec", quality=60)``.

Opening reads the header and the metadata chunks only (size, mode, ICC profile and EXIF
are known at once, so ``getexif()`` and ``ImageOps.exif_transpose`` work before any
pixel is decoded); the rest is read and decoded on first access to the pixels, like any
other Pillow format. ``save`` takes the fields of
:class:`~neuralcodec.codec.options.EncodeOptions` that concern an image in memory:
``quality`` or a target (``bpp``, ``size``, ``psnr``), ``effort`` (encoder effort, see
``aec encode --effort``), ``model``, ``tile_size``, ``strip``, ``lossless`` and
``max_error`` (the residual layer); and Pillow's
``icc_profile`` / ``exif`` to store instead of the image's own. Any other keyword is
refused with a ValueError naming it, never ignored.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from .api import decode, encode_with
from .codec.options import EncodeOptions
from .errors import AecError
from .format import container
from .format.chunks import CHUNK_EXIF, CHUNK_ICC
from .io.metadata import attach_metadata, exif_bytes, image_metadata

# The save() keywords that are encode options, and the metadata Pillow's writers take.
# Pillow itself puts nothing else in ``encoderinfo`` (it removes its own ``save_all``),
# so any other key is one the caller gave and aec cannot honour.
SAVE_OPTIONS = ("quality", "bpp", "size", "psnr", "effort", "model", "tile_size", "strip",
                "lossless", "max_error")
SAVE_METADATA = ("icc_profile", "exif")

FORMAT = "AEC"


def _accept(prefix: bytes) -> bool:
    return container.is_aec(prefix)


class AecImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "aec learned image codec"

    def _open(self) -> None:
        assert self.fp is not None
        self._aec_start: int | None = self.fp.tell()
        try:
            header = container.read_header(self.fp)  # the header's bytes only
        except AecError as exc:
            raise SyntaxError(str(exc)) from None
        self._size = (header.width, header.height)
        self._mode = header.mode
        self.info["quality"] = header.quality_value
        self.info["aec_model"] = header.model
        self.tile = []
        from .io.images import warn  # NumPy: not on `import neuralcodec`

        self.fp.seek(self._aec_start)
        try:
            chunks = container.read_image_chunks(self.fp)
        except AecError:
            chunks = {}  # damage is reported when the pixels are loaded
        attach_metadata(self, chunks.get(CHUNK_ICC), chunks.get(CHUNK_EXIF), warn)

    def load(self):
        if self._aec_start is not None:
            assert self.fp is not None
            self.fp.seek(self._aec_start)
            decoded = decode(self.fp.read())
            self._aec_start = None
            self.im = decoded.im
        return Image.Image.load(self)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    given = im.encoderinfo
    unknown = sorted(str(key) for key in given if key not in SAVE_OPTIONS + SAVE_METADATA)
    if unknown:
        raise ValueError(f"aec cannot honour the save() keyword(s) {', '.join(unknown)}; "
                         f"it takes {', '.join(SAVE_OPTIONS + SAVE_METADATA)}")
    options = EncodeOptions(**{key: given[key] for key in SAVE_OPTIONS
                               if given.get(key) is not None})
    if any(key in given for key in SAVE_METADATA):  # they win over the image's own
        icc, exif = image_metadata(im)
        if "icc_profile" in given:
            icc = given["icc_profile"] or None  # None or empty: no profile
        if "exif" in given:
            exif = exif_bytes(given["exif"])
        im = im.copy()  # the caller's image keeps its own
        im.info.update(icc_profile=icc, exif=exif)
    fp.write(encode_with(im, options))


Image.register_open(FORMAT, AecImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, container.AEC_SUFFIX)
Image.register_mime(FORMAT, "image/x-aec")
