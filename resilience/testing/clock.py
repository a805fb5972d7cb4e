"""An event loop whose clock jumps forward whenever it would otherwise wait.

Every policy reads time from the running loop (``loop.time()``) and sleeps with it, so
running code on :class:`SimulatedLoop` moves a 30 s breaker reset, a 10 s backoff and a
5 s timeout forward in microseconds of real time, and all of them agree.

Simulated time advances only while nothing real is pending: while a worker thread runs
(``run_in_executor``, ``asyncio.to_thread``) the loop waits for it in real time, and
registered sockets get a short real grace period before time jumps, so a server in the
same loop answers before a client's timeout fires.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from concurrent.futures import Executor
    from datetime import datetime

    from freezegun.api import FrozenDateTimeFactory, StepTickTimeFactory, TickingDateTimeFactory

T = TypeVar("T")


class _SimulatedSelector(selectors.DefaultSelector):
    """Polls real I/O; when it would block on a timer, advances simulated time instead."""

    def __init__(self, loop: SimulatedLoop, io_grace_s: float) -> None:
        super().__init__()
        self._loop = loop
        self._io_grace_s = io_grace_s

    @override
    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self._loop
        if timeout is None or loop.real_work_pending:
            started = time.perf_counter()
            ready = super().select(timeout)
            waited = time.perf_counter() - started
            loop.longest_real_wait_s = max(loop.longest_real_wait_s, waited)
            if timeout is not None:  # time passes as it really did
                loop.advance(min(waited, timeout))
            return ready
        ready = super().select(0)
        if ready or timeout <= 0:
            return ready
        if len(self.get_map()) > 1:  # sockets besides the loop's wake-up pipe
            ready = super().select(min(self._io_grace_s, timeout))
            if ready:
                return ready
        loop.advance(timeout)
        return []


class SimulatedLoop(asyncio.SelectorEventLoop):
    """A selector event loop on simulated time (see the module docstring).

    ``start`` is the initial ``loop.time()``. With ``wall_clock`` the wall clock
    (``datetime.now()``, ``time.time()``) is frozen there by freezegun and moves in step
    with simulated time, so code that reads dates (HTTP ``Retry-After`` dates, logs)
    agrees with the loop; freezegun runs with ``real_asyncio=True`` so it cannot stall
    the loop.
    """

    def __init__(
        self, *, start: float = 0.0, wall_clock: datetime | None = None, io_grace_s: float = 0.002
    ) -> None:
        self._now = start
        self._executor_jobs = 0
        #: The longest real-time wait so far: tests assert they never really slept.
        self.longest_real_wait_s = 0.0
        self._frozen: Any = None
        self._wall: FrozenDateTimeFactory | StepTickTimeFactory | TickingDateTimeFactory | None = (
            None
        )
        if wall_clock is not None:
            from freezegun import freeze_time  # noqa: PLC0415 - a test-only dependency

            self._frozen = freeze_time(wall_clock, real_asyncio=True)
            self._wall = self._frozen.start()
        super().__init__(_SimulatedSelector(self, io_grace_s))

    def time(self) -> float:
        """Simulated seconds."""
        return self._now

    @property
    def real_work_pending(self) -> bool:
        """Whether a worker thread is running for this loop."""
        return self._executor_jobs > 0

    def advance(self, seconds: float) -> None:
        """Move simulated time (and a frozen wall clock) forward."""
        if seconds > 0:
            self._now += seconds
            if self._wall is not None:
                self._wall.tick(seconds)

    @override
    def run_in_executor(  # type: ignore[override]
        self,
        executor: Executor | None,
        func: Callable[..., T],
        *args: Any,
    ) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self._executor_jobs += 1
        future.add_done_callback(self._executor_job_done)
        return future

    def _executor_job_done(self, _: asyncio.Future[Any]) -> None:
        self._executor_jobs -= 1

    @override
    def close(self) -> None:
        super().close()
        if self._frozen is not None:
            self._frozen.stop()
            self._frozen = self._wall = None


def run_simulated(coro: Coroutine[Any, Any, T], *, start: float = 0.0) -> T:
    """``asyncio.run`` on a :class:`SimulatedLoop`."""
    with asyncio.Runner(loop_factory=lambda: SimulatedLoop(start=start)) as runner:
        return runner.run(coro)


def now() -> float:
    """The running loop's time (simulated under :class:`SimulatedLoop`)."""
    return asyncio.get_running_loop().time()
