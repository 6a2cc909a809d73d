"""The Ray engine: actors that each load the model once, code tasks of many files, and
are replaced when they die (their task is retried).

Ray is imported only when this engine runs; ``import_ray`` turns its absence into one
AecError saying how to install it.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from ..errors import AecError, install_command
from .manifest import Recorder, Row
from .plan import Item, batches
from .worker import Settings, Worker, remove_leftovers

RAY_MISSING = f"--engine ray needs Ray: {install_command('ray')}"
# Tries of a task whose worker dies; then each of its files gets one more try alone, so
# a file that kills its worker every time fails by itself.
MAX_ATTEMPTS = 3
# Actors whose start may fail (a node without aec, say) before the run gives up.
MAX_START_FAILURES = 3
MAX_TASK_SIZE = 64


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise AecError(RAY_MISSING) from None
    return ray


@dataclass
class _Task:
    items: list[Item]
    attempts: int = 0


def connect(ray: Any, address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (``auto``: the running one; None: a new one on
    this machine) unless this process is connected already; whether one was started."""
    if ray.is_initialized():
        return False
    options = dict(include_dashboard=False, log_to_driver=False,
                   logging_level=logging.WARNING)
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(address="local", num_cpus=os.cpu_count() or 1, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"at {address}" if address else "on this machine"
        raise AecError(f"cannot start or join a Ray cluster {where}: {exc}") from None
    return True


def run(ray: Any, items: list[Item], settings: Settings, recorder: Recorder, *,
        workers: int | None = None, threads: int | None = None,
        task_size: int | None = None) -> None:
    """Code ``items`` on the connected Ray cluster."""
    _Dispatch(ray, items, settings, recorder, workers, threads, task_size).run()


class _Dispatch:
    """Hands tasks to idle actors; replaces an actor that dies and retries its task."""

    def __init__(self, ray: Any, items: list[Item], settings: Settings, recorder: Recorder,
                 workers: int | None, threads: int | None, task_size: int | None):
        self.ray = ray
        self.recorder = recorder
        resources = ray.cluster_resources()
        cpus, gpus = resources.get("CPU", 1.0), resources.get("GPU", 0.0)
        device = settings.options.device
        gpu = device == "cuda" or (device == "auto" and gpus > 0)
        if gpu and gpus == 0:
            raise AecError("device cuda was requested but the Ray cluster has no GPUs",
                           field="device")
        most = workers or max(1, int(gpus if gpu else cpus))
        size = task_size or max(1, min(MAX_TASK_SIZE, math.ceil(len(items) / (4 * most))))
        self.queue = deque(_Task(batch) for batch in batches(items, size))
        self.count = min(most, len(self.queue))
        cpu_share = threads or cpus / self.count
        if cpu_share > cpus:
            raise AecError(f"{threads} threads per worker is more than the Ray cluster's "
                           f"{cpus:g} CPUs", field="threads")
        actor_options: dict[str, Any] = {"num_cpus": cpu_share, "max_restarts": 0}
        if gpu:
            actor_options["num_gpus"] = min(1.0, gpus / self.count)
        # Each actor codes one file at a time: its transforms' threads are its CPU share.
        actor_threads = threads or max(1, int(cpu_share))
        self.actor_class = ray.remote(Worker).options(**actor_options)
        options = replace(settings.options, device="cuda" if gpu else "cpu")
        self.arguments = (replace(settings, options=options), actor_threads, 1)
        self.actors: dict[int, Any] = {}
        self.starting: dict[Any, int] = {}  # readiness reference -> slot
        self.running: dict[Any, tuple[int, _Task]] = {}  # result reference -> slot, task
        self.idle: list[int] = []
        self.start_failures = 0

    def start(self, slot: int) -> None:
        actor = self.actors[slot] = self.actor_class.remote(*self.arguments)
        self.starting[actor.__ray_ready__.remote()] = slot

    def run(self) -> None:
        try:
            for slot in range(self.count):
                self.start(slot)
            while self.queue or self.running:
                while self.queue and self.idle:
                    slot, task = self.idle.pop(), self.queue.popleft()
                    self.running[self.actors[slot].run.remote(task.items)] = slot, task
                ready, _ = self.ray.wait([*self.running, *self.starting], num_returns=1)
                if ready[0] in self.starting:
                    self.started(ready[0])
                else:
                    self.finished(ready[0])
        finally:
            for actor in self.actors.values():
                self.ray.kill(actor)
            for _, task in self.running.values():
                remove_leftovers(task.items)

    def started(self, ref: Any) -> None:
        slot = self.starting.pop(ref)
        try:
            self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            self.start_failures += 1
            if self.start_failures >= MAX_START_FAILURES:
                raise AecError(f"Ray workers could not start: {_first_line(exc)}") from None
            self.start(slot)
            return
        self.idle.append(slot)

    def finished(self, ref: Any) -> None:
        exceptions = self.ray.exceptions
        slot, task = self.running.pop(ref)
        try:
            rows = self.ray.get(ref)
        except (exceptions.RayActorError, exceptions.WorkerCrashedError):
            self.died(slot, task)
            return
        except exceptions.RayTaskError as exc:  # raised by the worker, not by a file
            cause = getattr(exc, "cause", None)
            if isinstance(cause, AecError):
                raise AecError(str(cause), cause.field) from None
            raise
        self.recorder.add(rows)
        self.idle.append(slot)

    def died(self, slot: int, task: _Task) -> None:
        """The actor (or its node) died mid-task: a new actor, and the task again."""
        self.ray.kill(self.actors[slot])
        remove_leftovers(task.items)
        self.start(slot)
        task.attempts += 1
        if task.attempts < MAX_ATTEMPTS:
            self.queue.appendleft(task)
        elif len(task.items) > 1:
            self.queue.extendleft(_Task([item], MAX_ATTEMPTS - 1)
                                  for item in reversed(task.items))
        else:
            item = task.items[0]
            self.recorder.add([Row.failed(
                item, f"the worker coding it died {MAX_ATTEMPTS} times")])


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
