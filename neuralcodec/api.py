"""One-call encoding and decoding with process-wide codecs (loaded on first use, so
importing this stays light)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .codec.options import EncodeOptions

if TYPE_CHECKING:
    from PIL import Image

    from .codec import Codec
    from .codec.prepare import ImageSource
    from .io.files import DataSource

_default_codecs: dict[tuple[Any, ...], Codec] = {}


def default_codec(model: str | None = None) -> Codec:
    """A process-wide codec per model, so one-off calls load weights only once."""
    return _codec_for(EncodeOptions(model=model))


def _codec_for(options: EncodeOptions) -> Codec:
    """The process-wide codec that options describe (model, device, tiles, pixel limit)."""
    key = (options.model, options.device, options.tile_size, options.max_pixels)
    codec = _default_codecs.get(key)
    if codec is None:
        codec = _default_codecs[key] = options.codec()
    return codec


def encode(image: ImageSource, quality: float | None = None, model: str | None = None,
           effort: int = 1, strip: bool = False, lossless: bool = False,
           max_error: int | None = None) -> bytes:
    """Compress an image (a PIL image, a path, a binary file object or a uint8 array of
    shape (H, W), (H, W, 3) or (H, W, 4)) to .aec bytes at ``quality`` (0..100, higher
    is better; None: the default, 75); ``effort`` > 1 spends encoding time for a smaller
    file (see :meth:`neuralcodec.Codec.encode`); ``strip`` drops the EXIF block (GPS,
    camera, dates) but for a non-default orientation. ``lossless`` decodes to exactly
    the image, ``max_error`` K (0..8) to within K in every sample (the residual layer;
    ``quality`` then fixes the base layer's, else the encoder picks it)."""
    return encode_with(image, EncodeOptions(quality=quality, model=model, effort=effort,
                                            strip=strip, lossless=lossless,
                                            max_error=max_error))


def encode_with(image: ImageSource, options: EncodeOptions) -> bytes:
    """Compress an image to .aec bytes as ``options`` ask (a quality or a rate target,
    effort, model, ...: see :class:`~neuralcodec.codec.options.EncodeOptions`)."""
    return _codec_for(options).encode_with(image, options)[0]


def decode(data: DataSource) -> Image.Image:
    """Restore the image stored in a .aec file: its bytes, its path or a binary file
    object."""
    return default_codec().decode(data)
