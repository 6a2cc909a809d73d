"""An image prepared for encoding: in a native mode, its metadata kept, checked against
the pixel limit; and the analysis outputs a rate search reuses."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from .. import metrics
from ..errors import AecError, AecWarning, PrecisionWarning
from ..io.files import STDIO
from ..io.images import as_image, check_pixel_limit, native_image, split_alpha, warn
from ..io.metadata import image_metadata
from .options import OptionError, _text


@dataclass
class Analysis:
    """An image prepared for encoding. The analysis transform's output can be cached: the
    rate level only scales it by gains, so a search for a target size re-runs only the
    latent coding."""

    image: Image.Image  # in a native mode: the pixels that are coded
    icc_profile: bytes | None = None  # one that describes ``image``'s pixels
    exif: bytes | None = None
    # Per model: the analysis output of a one-tile image ...
    features: dict[str, Any] = field(default_factory=dict)
    # ... or of each tile of a larger one (filled only when caching is asked for).
    tile_features: dict[str, dict[int, Any]] = field(default_factory=dict)
    _reference: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def colour(self) -> Image.Image:
        """The image without alpha."""
        return split_alpha(self.image)[0]

    def psnr(self, decoded: Image.Image) -> float:
        """RGB PSNR in dB of a decoding of this image against the image that was coded:
        after the conversions its notes announced (16-bit samples reduced, a mode
        converted, CMYK to sRGB), without alpha. Every PSNR aec reports or aims at (``-v``,
        ``psnr=`` targets, data-set manifests) is this one."""
        if self._reference is None:  # kept for the next decoding (a rate search's)
            self._reference = np.asarray(self.colour.convert("RGB"))
        return metrics.psnr(self._reference, np.asarray(decoded.convert("RGB")))


    def largest_error(self, decoded: Image.Image) -> int:
        """The largest difference of a decoded colour sample from the image coded (alpha
        aside, as :meth:`psnr`)."""
        a = np.asarray(self.colour.convert("RGB"), dtype=np.int16)
        return int(np.abs(a - np.asarray(decoded.convert("RGB"), dtype=np.int16)).max())


# What the API encodes: a PIL image, a path, a binary file object, a uint8 array, or an
# image already prepared (by :func:`prepare_image`).
ImageSource = Image.Image | str | Path | IO[bytes] | np.ndarray | Analysis


def prepare_image(image: ImageSource, max_pixels: int | None, frame: int | None = None,
                  exact: bool = False) -> Analysis:
    """An image ready to encode: opened (``frame`` picks one of a file's frames), checked
    against the pixel limit, in a native mode, with the metadata that still describes its
    pixels. Notes about conversions name the file where it has a name. A prepared image
    is returned as it is. ``exact`` (a lossless or near-lossless encode) refuses an input
    whose samples would lose precision (16-bit) rather than reduce it with a note."""
    if isinstance(image, Analysis):
        return image
    name = _name(image)
    if exact:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PrecisionWarning)
            try:
                return prepare_image(image, max_pixels, frame)
            except PrecisionWarning as exc:
                raise OptionError(f"{_text(exc)}: refused, as {{lossless}} and "
                                  "{max_error} code 8 bits per sample and never drop bits "
                                  "silently (reduce the image to 8 bits first to code it "
                                  "so)", field="max_error") from None
    image = as_image(image, max_pixels, frame)
    if 0 in image.size:  # no file could hold it: the container refuses empty images
        raise AecError(f"image is {image.width}x{image.height}: nothing to encode")
    check_pixel_limit(*image.size, max_pixels, "image")
    icc, exif = image_metadata(image)
    name = name or getattr(image, "filename", None)

    def notice(message: str, category: type[AecWarning] = AecWarning) -> None:
        warn(f"{name}: {message}" if name else message, category)

    native, icc = native_image(image, icc, notice)
    return Analysis(native, icc, exif)


def _name(source: ImageSource) -> str | None:
    """How notes name an image given by its path or file object."""
    if isinstance(source, (str, Path)):
        return "stdin" if str(source) == STDIO else str(source)
    name = getattr(source, "name", None) if hasattr(source, "read") else None
    return name if isinstance(name, str) else None
