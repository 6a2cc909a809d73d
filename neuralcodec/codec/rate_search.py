"""Rate targets: the quality that meets a file size, a bit rate or a PSNR.

File size and PSNR both grow with the continuous quality knob, so a bisection over it
finds the highest quality whose file fits a size (or bit rate), or the lowest quality
(the smallest file) that reaches a PSNR. A target no quality meets is an error that
names the nearest reachable value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import AecError

if TYPE_CHECKING:
    from PIL import Image

    from .prepare import Analysis

Encode = Callable[[float], bytes]
Test = Callable[[bytes], bool]


def _bisect(encode: Encode, ok: Test, ok_high: bool, iterations: int
            ) -> tuple[bytes, float] | None:
    """The quality nearest the boundary on the ``ok`` side (to 0.01) and its file, where
    ``ok`` holds at one end of 0..100 (``ok_high``: at 100) and fails at the other; None
    if it does not hold at that end."""
    inside, outside = (100.0, 0.0) if ok_high else (0.0, 100.0)
    best = encode(inside)
    if not ok(best):
        return None
    other = encode(outside)
    if ok(other):
        return other, outside
    best_q = inside
    for _ in range(iterations):
        mid = round((inside + outside) / 2, 2)
        if mid in (inside, outside):
            break
        data = encode(mid)
        if ok(data):
            inside, best, best_q = mid, data, mid
        else:
            outside = mid
    return best, best_q


def highest_quality_within(encode: Encode, fits: Test, iterations: int = 12
                           ) -> tuple[bytes, float] | None:
    """The highest quality whose file ``fits`` and that file; None if quality 0's does
    not."""
    return _bisect(encode, fits, ok_high=False, iterations=iterations)


def lowest_quality_reaching(encode: Encode, reaches: Test, iterations: int = 12
                            ) -> tuple[bytes, float] | None:
    """The lowest quality whose file ``reaches`` a fidelity and that file; None if
    quality 100's does not."""
    return _bisect(encode, reaches, ok_high=True, iterations=iterations)


def meets(prepared: Analysis, decode: Callable[[bytes], Image.Image], target: str,
          value: float, data: bytes) -> bool:
    """Whether a file meets a target as :func:`encode_to_target` means it."""
    if target == "psnr":
        return prepared.psnr(decode(data)) >= value
    pixels = prepared.image.width * prepared.image.height
    return len(data) <= (value * pixels / 8 if target == "bpp" else float(value))


def encode_to_target(prepared: Analysis, encode: Encode, decode: Callable[[bytes], Image.Image],
                     target: str, value: float, iterations: int = 12,
                     beyond: Callable[[], tuple[bytes, float]] | None = None
                     ) -> tuple[bytes, float]:
    """(file, quality) meeting a ``target`` of :data:`~neuralcodec.codec.options.TARGETS`
    (checked by :class:`~neuralcodec.codec.options.EncodeOptions`): at most ``value``
    bits per pixel ("bpp") or bytes ("size"), the highest quality that fits, or at least
    ``value`` dB of RGB PSNR ("psnr"), the lowest quality, so the smallest file, that
    reaches it. ``encode`` makes the file of ``prepared`` at a quality, ``decode``
    restores one (for the PSNR). ``beyond``, where given, makes the file of a PSNR that
    quality 100 does not reach (the residual layer's)."""
    pixels = prepared.image.width * prepared.image.height
    if target == "psnr":
        def fidelity(data: bytes) -> float:
            return prepared.psnr(decode(data))

        found = lowest_quality_reaching(encode, lambda d: fidelity(d) >= value, iterations)
        if found is None and beyond is not None:
            return beyond()
        if found is None:
            top = fidelity(encode(100.0))
            raise AecError(f"a PSNR of {value:g} dB cannot be reached: quality 100 gives "
                           f"{top:.2f} dB", field="psnr")
        return found
    limit = value * pixels / 8 if target == "bpp" else float(value)
    found = highest_quality_within(encode, lambda d: len(d) <= limit, iterations)
    if found is None:
        smallest = len(encode(0.0))
        wanted = f"{value:g} bpp" if target == "bpp" else f"{value} bytes"
        raise AecError(f"{wanted} cannot be met: the smallest file (quality 0) is "
                       f"{smallest} bytes, {8 * smallest / pixels:.4f} bpp", field=target)
    return found
