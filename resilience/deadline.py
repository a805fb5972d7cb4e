"""Deadline budgets that nested calls inherit, on the event loop's clock."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import TYPE_CHECKING, Self

from resilience.errors import DeadlineExceeded

if TYPE_CHECKING:
    from types import TracebackType

# Absolute loop time by which the current call chain must finish; ``None``: no budget.
# A ContextVar, so tasks started inside a budget (a tier's gather) inherit it.
_budget: ContextVar[float | None] = ContextVar("resilience_deadline", default=None)


def current_deadline() -> float | None:
    """The tightest budget in force, as an absolute ``loop.time()``, or ``None``."""
    return _budget.get()


def remaining(now: float | None = None) -> float | None:
    """Seconds left in the current budget (may be <= 0), or ``None`` without one."""
    at = _budget.get()
    if at is None:
        return None
    if now is None:
        now = asyncio.get_running_loop().time()
    return at - now


class deadline:  # noqa: N801 - used like a function: ``async with deadline(2):``
    """Give the block a total budget of ``seconds``; nested budgets take the tightest.

    Every policy inside sees the budget: a timeout uses the smaller of its own limit and
    what remains, a retry never sleeps or starts an attempt past it. When the budget runs
    out the block is cancelled and :class:`DeadlineExceeded` raised; an outside
    cancellation that arrives first stays a cancellation.
    """

    __slots__ = ("_scope", "_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        if not seconds > 0 or seconds == float("inf"):
            raise ValueError(f"deadline needs a positive finite number of seconds, got {seconds!r}")
        self._seconds = seconds
        self._scope: asyncio.Timeout | None = None
        self._token: object = None

    async def __aenter__(self) -> Self:
        now = asyncio.get_running_loop().time()
        at = now + self._seconds
        parent = _budget.get()
        if parent is not None and parent < at:
            at = parent
        self._token = _budget.set(at)
        self._scope = asyncio.timeout_at(at)
        await self._scope.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _budget.reset(self._token)  # type: ignore[arg-type]
        assert self._scope is not None  # noqa: S101 - entered before exit
        try:
            await self._scope.__aexit__(exc_type, exc, tb)
        except TimeoutError as timeout:
            raise DeadlineExceeded("deadline", self._seconds, budget=True) from timeout

    @property
    def expires_at(self) -> float:
        """The absolute loop time this block must finish by (after entering)."""
        if self._scope is None or (when := self._scope.when()) is None:
            raise RuntimeError("deadline has not been entered")
        return when
