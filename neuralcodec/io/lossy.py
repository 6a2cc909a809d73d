"""Image formats that lose pixels when a decoded image is saved in them: the quality they
are saved at, the writer's options for it, and what the loss is, in words.

Pure data and strings (no Pillow, no NumPy), so that the options and ``aec --help`` can
use it without loading either.
"""

from __future__ import annotations

from typing import Any

# Kodak images decoded at aec quality 75 lost 3.4 dB (against the originals) when saved
# as JPEG at Pillow's default (75, 4:2:0), and 0.6 dB at 95 in 4:4:4
# (docs/performance.md#decoding-to-a-lossy-format).
DEFAULT_OUTPUT_QUALITY = 95
OUTPUT_QUALITY_RANGE = (1, 100)
# From this quality on, the chroma planes keep full resolution (4:4:4): asking for a high
# quality is asking for the colour detail too. For JPEG at 95 this kept 1.7 dB more of
# the decoded image than 4:2:0, for 20 % more bytes (the same measurement).
FULL_CHROMA_FROM = 90

# Pillow's names of the formats that take a quality, as users know them. WebP at quality
# 100 is written lossless (the decoded pixels exactly); the others lose some at any.
QUALITY_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WebP", "AVIF": "AVIF"}
LOSSLESS_WEBP = 100
# Formats that reduce an image to a palette of 256 colours, and take no quality.
PALETTE_FORMATS = {"GIF": "GIF"}

_EXACT = "PNG, TIFF or WebP at quality 100 keep the decoded pixels exactly"


def takes_quality(fmt: str) -> bool:
    """Whether images saved in Pillow format ``fmt`` are saved at a quality."""
    return fmt in QUALITY_FORMATS


def quality_formats() -> str:
    """The formats that take a quality, in words: "JPEG, WebP and AVIF"."""
    names = list(dict.fromkeys(QUALITY_FORMATS.values()))
    return f"{', '.join(names[:-1])} and {names[-1]}"


def save_options(fmt: str, quality: int | None) -> dict[str, Any]:
    """Pillow's options to save in ``fmt`` at ``quality`` (None: a format without one)."""
    if quality is None or not takes_quality(fmt):
        return {}
    if fmt == "WEBP":
        if quality >= LOSSLESS_WEBP:  # exact: keep the colour under transparent pixels too
            return {"lossless": True, "quality": 100, "exact": True}
        return {"quality": quality}
    full = quality >= FULL_CHROMA_FROM
    if fmt == "AVIF":
        return {"quality": quality, "subsampling": "4:4:4" if full else "4:2:0"}
    return {"quality": quality, "subsampling": 0 if full else 2}  # JPEG: 0 is 4:4:4


def note(where: str, fmt: str, quality: int | None, option: str) -> str | None:
    """The note for an image saved to ``where`` in ``fmt`` at ``quality``, naming the
    quality option as the caller spells it, or None if the format loses nothing."""
    if fmt in PALETTE_FORMATS:
        return (f"{where}: {PALETTE_FORMATS[fmt]} holds 256 colours: the image is reduced "
                f"to a palette ({_EXACT})")
    if quality is None or not takes_quality(fmt):
        return None
    if fmt == "WEBP" and quality >= LOSSLESS_WEBP:
        return None
    return (f"{where}: {QUALITY_FORMATS[fmt]} is lossy: saved at quality {quality} "
            f"({option}; {_EXACT})")
