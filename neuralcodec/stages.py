"""Named stages of the coding path, timed only when someone asks (``aec bench``).

The code marks its stages with ``with stage("synthesis transform"): ...``. Without an
active :class:`StageTimer` a mark costs one context-variable lookup; with one, each
stage's *own* time is summed (time spent in a stage marked inside it is that inner
stage's), so the stages of one encode or decode add up without overlap.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_active: ContextVar[StageTimer | None] = ContextVar("aec_stage_timer", default=None)


@contextmanager
def stage(name: str) -> Iterator[None]:
    timer = _active.get()
    if timer is None:
        yield
        return
    timer.enter(name)
    try:
        yield
    finally:
        timer.exit()


class StageTimer:
    """Seconds per stage while :meth:`active`; ``synchronize`` (e.g. waiting for the GPU)
    runs at every stage boundary so queued device work lands in its stage."""

    def __init__(self, synchronize: Callable[[], None] | None = None):
        self.seconds: dict[str, float] = defaultdict(float)
        self._synchronize = synchronize or (lambda: None)
        self._open: list[list] = []  # [name, start, seconds of inner stages]

    def enter(self, name: str) -> None:
        self._synchronize()
        self._open.append([name, time.perf_counter(), 0.0])

    def exit(self) -> None:
        self._synchronize()
        name, start, inner = self._open.pop()
        elapsed = time.perf_counter() - start
        self.seconds[name] += elapsed - inner
        if self._open:
            self._open[-1][2] += elapsed

    @contextmanager
    def active(self) -> Iterator[StageTimer]:
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)
