"""Bulkheads: a backend's concurrency limit, with a bounded priority queue in front of it.

A slow backend then holds at most ``max_concurrency`` of the service's calls; the rest wait
in a queue served highest priority first (first come, first served within a priority),
and a call that finds the queue full, or waits longer than ``queue_timeout_s``, fails fast
with :class:`QueueFullError` instead of piling up. A released slot is handed straight to
the next waiter, so a newcomer can never overtake the queue.

The priority of a call comes from :func:`priority` (a context variable, so calls made by
a tier's task inherit the task's priority without changing any signature).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import override

from resilience import events
from resilience._checks import check_count, check_seconds
from resilience._shared import Registry
from resilience.errors import QueueFullError
from resilience.pipeline import Call, CallContext, Policy

if TYPE_CHECKING:
    from collections.abc import Iterator

T = TypeVar("T")

#: The priority calls made in this context queue with (default 0; higher is served first).
#: Set it with :func:`priority`; a tier sets it for each task that names a priority.
priority_var: ContextVar[int] = ContextVar("resilience_priority", default=0)


@contextmanager
def priority(level: int) -> Iterator[None]:
    """Queue the calls made inside the block at ``level`` (higher first)."""
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"priority must be an int, got {level!r}")
    token = priority_var.set(level)
    try:
        yield
    finally:
        priority_var.reset(token)


class Bulkhead:
    """One backend's slots and waiting queue, shared by every pipeline that names it."""

    __slots__ = (
        "__weakref__",
        "_counter",
        "_queue",
        "active",
        "max_concurrency",
        "name",
        "queue_size",
        "queue_timeout_s",
    )

    def __init__(
        self,
        name: str,
        *,
        max_concurrency: int,
        queue_size: int = 100,
        queue_timeout_s: float = 5.0,
    ) -> None:
        check_count("max_concurrency", max_concurrency)
        check_count("queue_size", queue_size, minimum=0)
        self.name = name
        self.max_concurrency = max_concurrency
        self.queue_size = queue_size
        self.queue_timeout_s = check_seconds("queue_timeout_s", queue_timeout_s)
        #: Calls holding a slot now.
        self.active = 0
        # (-priority, arrival, future): heap order is highest priority, then first come.
        self._queue: list[tuple[int, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    @property
    def settings(self) -> tuple[int, int, float]:
        """What two users of one shared bulkhead must agree on."""
        return (self.max_concurrency, self.queue_size, self.queue_timeout_s)

    def reset(self) -> None:
        """No call holding a slot, none queued (cancelling the waits of any still pending)."""
        self.active = 0
        for _, _, future in self._queue:
            future.cancel()
        self._queue.clear()

    @property
    def waiting(self) -> int:
        """Calls queued for a slot now."""
        return len(self._queue)

    async def acquire(self, level: int = 0) -> None:
        """Take a slot, waiting in the queue at ``level`` if none is free."""
        if self.active < self.max_concurrency:  # a free slot implies an empty queue
            self.active += 1
            return
        if len(self._queue) >= self.queue_size:
            self._reject("queue_full", f"{self.active} calls running and {len(self._queue)} queued")
        await self._wait(level)

    async def _wait(self, level: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (-level, next(self._counter), future)
        heapq.heappush(self._queue, entry)
        scope = asyncio.timeout(self.queue_timeout_s)
        try:
            async with scope:
                await future
        except BaseException as exc:
            if future.done() and not future.cancelled():
                self.release()  # the slot arrived as we gave up: hand it on
            elif entry in self._queue:  # not yet skipped by ``release``
                self._queue.remove(entry)
                heapq.heapify(self._queue)
            # Only the queue's own timeout is a rejection; asyncio.timeout raises
            # TimeoutError for it alone, so an outside cancellation stays a cancellation.
            if isinstance(exc, TimeoutError) and scope.expired():
                self._reject("queue_timeout", f"no slot within {self.queue_timeout_s:.6g} s")
            raise

    def release(self) -> None:
        """Give a slot back: to the first waiter in priority order, or to the pool."""
        while self._queue:
            future = heapq.heappop(self._queue)[2]
            if not future.done():
                future.set_result(None)  # the slot passes to the waiter; ``active`` stays
                return
        self.active -= 1

    def _reject(self, reason: str, detail: str) -> None:
        events.emit(events.QueueRejected(self.name, reason))
        raise QueueFullError(self.name, detail) from None


_bulkheads: Registry[Bulkhead] = Registry("bulkhead")


def shared_bulkhead(name: str, **settings: Any) -> Bulkhead:  # noqa: ANN401 - Bulkhead's options
    """The process-wide bulkhead called ``name``, created on first use."""
    return _bulkheads.get(name, lambda: Bulkhead(name, **settings))


def reset_bulkheads() -> None:
    """Empty every shared bulkhead in place and forget their names (no call in flight)."""
    _bulkheads.reset()


class BulkheadPolicy(Policy):
    """Hold one of the backend's slots for the whole call (outermost: retries included)."""

    __slots__ = ("_bulkhead", "_name", "_settings")

    def __init__(
        self, name: str | None, settings: dict[str, Any], bulkhead: Bulkhead | None = None
    ) -> None:
        if bulkhead is None:
            Bulkhead("validation", **settings)  # fail at build time, not on first call
        self._name = name
        self._settings = settings
        self._bulkhead = bulkhead

    @property
    def bulkhead(self) -> Bulkhead:
        """The bulkhead this policy uses (after binding to a backend)."""
        if self._bulkhead is None:
            raise RuntimeError("bulkhead() without a name is bound when it wraps a function")
        return self._bulkhead

    @override
    def bind(self, backend: str) -> BulkheadPolicy:
        if self._bulkhead is not None:
            return self
        return BulkheadPolicy(
            self._name, self._settings, shared_bulkhead(self._name or backend, **self._settings)
        )

    @override
    async def execute(self, call: Call[T], ctx: CallContext) -> T:
        bulkhead = self._bulkhead or self.bound(ctx.backend).bulkhead
        if bulkhead.active < bulkhead.max_concurrency:  # fast path, no extra coroutine
            bulkhead.active += 1
        else:
            await bulkhead.acquire(priority_var.get())
        try:
            return await call(ctx)
        finally:
            bulkhead.release()


def bulkhead(
    max_concurrency: int,
    *,
    queue_size: int = 100,
    queue_timeout_s: float = 5.0,
    name: str | None = None,
) -> BulkheadPolicy:
    """Allow ``max_concurrency`` calls at once; queue up to ``queue_size`` more by priority.

    Bulkheads are shared by ``name`` (default: the backend name) within a process. A call
    that finds the queue full, or waits longer than ``queue_timeout_s``, raises
    :class:`QueueFullError` (and emits ``resilience.queue_rejected``). Set a call's
    priority with ``with priority(n):`` or a tier task's ``priority``.
    """
    settings = {
        "max_concurrency": max_concurrency,
        "queue_size": queue_size,
        "queue_timeout_s": queue_timeout_s,
    }
    return BulkheadPolicy(name, settings)
