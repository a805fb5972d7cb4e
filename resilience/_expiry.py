"""Deadlines of one fixed duration, on one event-loop timer instead of one timer each.

A timer per call (``loop.call_at`` or ``asyncio.timeout``) pushes a handle into the loop's
heap through Python-level comparisons, more of them the more calls are in flight, and a
cancelled one stays in that heap until its time comes. A tier's timeout, or a timeout
policy's limit, is one fixed duration, so deadlines arrive in the order the calls started:
a deque holds them, and a single timer, re-armed when it fires, serves the earliest. A
call that ends clears its entry, and cleared entries are dropped from the front as new
calls arrive, so the deque holds about as many entries as calls are in flight.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio


class Deadline:
    """One run's deadline: ``target.cancel()`` is called when it passes, unless cleared."""

    __slots__ = ("at", "fired", "target")

    def __init__(self, at: float, target: asyncio.Future[Any]) -> None:
        self.at = at
        self.target: asyncio.Future[Any] | None = target
        #: Whether the deadline passed and ``target`` was cancelled for it.
        self.fired = False

    def clear(self) -> None:
        """The run ended in time: never cancel it, and let go of it now."""
        self.target = None


class Expiries:
    """Deadlines ``timeout_s`` after their start, on ``loop``, in start order."""

    __slots__ = ("_armed_at", "_entries", "_handle", "loop", "timeout_s")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self.loop = loop
        self.timeout_s = timeout_s
        self._entries: deque[Deadline] = deque()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = 0.0

    def start(self, now: float, target: asyncio.Future[Any]) -> Deadline:
        """Cancel ``target`` ``timeout_s`` after ``now`` unless the deadline is cleared."""
        entries = self._entries
        while entries and entries[0].target is None:
            entries.popleft()
        deadline = Deadline(now + self.timeout_s, target)
        entries.append(deadline)
        if self._handle is None:
            self._arm(deadline.at)
        return deadline

    def _arm(self, at: float) -> None:
        self._armed_at = at
        self._handle = self.loop.call_at(at, self._expire)

    def _expire(self) -> None:
        # Due is what the loop fired us for (it fires a little early by its clock's
        # resolution, as for any timer), not ``loop.time()``: no re-arming for a nanosecond.
        self._handle = None
        due = self._armed_at
        entries = self._entries
        while entries and (entries[0].target is None or entries[0].at <= due):
            deadline = entries.popleft()
            if deadline.target is not None:
                deadline.fired = True
                deadline.target.cancel()
        if entries:
            self._arm(entries[0].at)
