"""Deadline budgets that nested calls inherit, on the event loop's clock."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Self

from resilience.errors import DeadlineExceeded

if TYPE_CHECKING:
    from types import TracebackType


class deadline:  # noqa: N801 - used like a function: ``async with deadline(2):``
    """Give the block a total budget of ``seconds``; nested budgets take the tightest.

    Every policy inside sees the budget: a timeout uses the smaller of its own limit and
    what remains, a retry never sleeps or starts an attempt past it. When the budget runs
    out the block is cancelled and :class:`DeadlineExceeded` raised; an outside
    cancellation that arrives first stays a cancellation.
    """

    __slots__ = ("_entered", "_scope", "_seconds", "_token", "at")

    def __init__(self, seconds: float) -> None:
        if not 0 < seconds < float("inf"):
            raise ValueError(f"deadline needs a positive finite number of seconds, got {seconds!r}")
        self._seconds = seconds
        self._scope: asyncio.Timeout | None = None
        self._token: Token[deadline | None] | None = None
        self._entered = 0.0
        #: Absolute loop time the block must finish by (set when entered).
        self.at = float("inf")

    async def __aenter__(self) -> Self:
        now = self._entered = asyncio.get_running_loop().time()
        self.at = now + self._seconds
        parent = _budget.get()
        if parent is not None and parent.at < self.at:
            self.at = parent.at
        self._token = _budget.set(self)
        self._scope = asyncio.timeout_at(self.at)
        await self._scope.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is None or self._scope is None:
            raise RuntimeError("deadline exited without being entered")
        _budget.reset(self._token)
        try:
            await self._scope.__aexit__(exc_type, exc, tb)
        except TimeoutError as timeout:
            raise DeadlineExceeded(None, self.at - self._entered, budget=True) from timeout

    @property
    def expires_at(self) -> float:
        """The absolute loop time this block must finish by (after entering)."""
        if self._scope is None:
            raise RuntimeError("deadline has not been entered")
        return self.at


# The innermost budget of the current call chain. A ContextVar, so tasks started inside
# a budget (a tier's gather) inherit it.
_budget: ContextVar[deadline | None] = ContextVar("resilience_deadline", default=None)


def current_budget() -> deadline | None:
    """The innermost entered :class:`deadline` block, or ``None``."""
    return _budget.get()


def current_deadline() -> float | None:
    """The tightest budget in force, as an absolute ``loop.time()``, or ``None``."""
    block = _budget.get()
    return None if block is None else block.at


def remaining(now: float | None = None) -> float | None:
    """Seconds left in the current budget (may be <= 0), or ``None`` without one."""
    block = _budget.get()
    if block is None:
        return None
    if now is None:
        now = asyncio.get_running_loop().time()
    return block.at - now
