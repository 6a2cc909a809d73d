"""Rate targets: the highest quality whose file meets a constraint."""

from __future__ import annotations

from collections.abc import Callable


def highest_quality_within(encode: Callable[[float], bytes], fits: Callable[[bytes], bool],
                           iterations: int = 12) -> tuple[bytes, float]:
    """Bisection on the continuous quality knob (file size grows with quality): the
    highest quality, to 0.01, whose file ``fits``, and that file. If even quality 0 does
    not fit, quality 0's file."""
    lo_q, hi_q = 0.0, 100.0
    best = encode(lo_q)
    best_q = lo_q
    if not fits(best):
        return best, best_q
    top = encode(hi_q)
    if fits(top):
        return top, hi_q
    for _ in range(iterations):
        mid = round((lo_q + hi_q) / 2, 2)
        if mid in (lo_q, hi_q):
            break
        data = encode(mid)
        if fits(data):
            lo_q, best, best_q = mid, data, mid
        else:
            hi_q = mid
    return best, best_q
