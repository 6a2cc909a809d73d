"""The one quality unit. The API and the CLI speak quality 0..100 (a float, higher is
better); a file stores it as an integer in hundredths, and both ends derive the rate
level from that integer, so encoder and decoder agree exactly."""

from __future__ import annotations

from ..errors import AecError

DEFAULT_QUALITY = 75.0
QUALITY_SCALE = 100  # stored units per quality unit
STORED_MAX = 100 * QUALITY_SCALE  # quality 100


def to_stored(quality: float) -> int:
    """The stored form of a quality 0..100."""
    q = float(quality)
    if not 0.0 <= q <= 100.0:
        raise AecError(f"quality must be between 0 and 100, got {quality}")
    return int(round(q * QUALITY_SCALE))


def from_stored(stored: int) -> float:
    """Quality 0..100 from its stored form."""
    return stored / QUALITY_SCALE
