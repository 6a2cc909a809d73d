"""An image prepared for encoding: in a native mode, its metadata kept, checked against
the pixel limit; and the analysis outputs a rate search reuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from ..errors import AecError
from ..io.images import as_image, check_pixel_limit, image_metadata, normalize_mode, split_alpha

# What the API encodes: a PIL image, a path, a binary file object or a uint8 array.
ImageSource = Image.Image | str | Path | IO[bytes] | np.ndarray


@dataclass
class Analysis:
    """An image prepared for encoding. The analysis transform's output can be cached: the
    rate level only scales it by gains, so a search for a target size re-runs only the
    latent coding."""

    image: Image.Image  # in a native mode
    icc_profile: bytes | None = None
    exif: bytes | None = None
    # Per model: the analysis output of a one-tile image ...
    features: dict[str, Any] = field(default_factory=dict)
    # ... or of each tile of a larger one (filled only when caching is asked for).
    tile_features: dict[str, dict[int, Any]] = field(default_factory=dict)

    @property
    def colour(self) -> Image.Image:
        """The image without alpha."""
        return split_alpha(self.image)[0]


def prepare_image(image: ImageSource, max_pixels: int | None, frame: int | None = None
                  ) -> Analysis:
    image = as_image(image, max_pixels, frame)
    if 0 in image.size:  # no file could hold it: the container refuses empty images
        raise AecError(f"image is {image.width}x{image.height}: nothing to encode")
    check_pixel_limit(*image.size, max_pixels, "image")
    icc, exif = image_metadata(image)
    return Analysis(normalize_mode(image), icc, exif)
