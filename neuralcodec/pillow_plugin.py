"""Pillow plugin: ``Image.open("x.aec")`` and ``im.save("x.aec", quality=60)``.

Opening reads only the header's bytes (size and mode are known at once); the rest is
read and decoded on first access to the pixels, like any other Pillow format. ``save``
takes the fields of :class:`~neuralcodec.codec.options.EncodeOptions` that concern an
image in memory: ``quality`` or a target (``bpp``, ``size``, ``psnr``), ``effort``
(encoder effort, see ``aec encode --effort``), ``model`` and ``tile_size``; and
``icc_profile`` / ``exif`` to store.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from .api import decode, encode_with
from .codec.options import EncodeOptions
from .errors import AecError
from .format import container

# The save() keywords that are encode options (Pillow passes its own keywords too).
SAVE_OPTIONS = ("quality", "bpp", "size", "psnr", "effort", "model", "tile_size")

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

    def load(self):
        if self._aec_start is not None:
            assert self.fp is not None
            self.fp.seek(self._aec_start)
            decoded = decode(self.fp.read())
            self._aec_start = None
            self.im = decoded.im
            for key in ("icc_profile", "exif"):  # the file's metadata chunks
                if key in decoded.info:
                    self.info[key] = decoded.info[key]
        return Image.Image.load(self)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    options = EncodeOptions(**{key: im.encoderinfo[key] for key in SAVE_OPTIONS
                               if im.encoderinfo.get(key) is not None})
    metadata = {key: im.encoderinfo[key] for key in ("icc_profile", "exif")
                if im.encoderinfo.get(key)}
    if hasattr(metadata.get("exif"), "tobytes"):  # an Image.Exif
        metadata["exif"] = metadata["exif"].tobytes()
    if metadata:  # given to save(): they win over the image's own
        im = im.copy()
        im.info.update(metadata)
    fp.write(encode_with(im, options))


Image.register_open(FORMAT, AecImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, container.AEC_SUFFIX)
Image.register_mime(FORMAT, "image/x-aec")
