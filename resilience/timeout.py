"""Per-attempt time limits on the event loop's clock."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

from typing_extensions import override

from resilience import events
from resilience.deadline import current_budget
from resilience.errors import DeadlineExceeded
from resilience.pipeline import Call, CallContext, Policy

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def check_seconds(name: str, value: float) -> float:
    """Reject zero, negative, ``nan`` and ``inf`` limits when a policy is built."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value < float("inf")
    ):
        raise ValueError(f"{name} must be a positive finite number of seconds, got {value!r}")
    return float(value)


async def run_with_limit(
    call: Call[T],
    ctx: CallContext,
    limit_s: float,
    on_timeout: Callable[[], None] | None = None,
) -> T:
    """Await ``call`` within ``limit_s`` or the caller's budget, whichever ends first.

    ``asyncio.timeout`` runs the work in the caller's task, so timed-out work is cancelled
    and has finished unwinding before :class:`DeadlineExceeded` is raised, and it turns a
    cancellation into a timeout only when its own deadline fired (an outside cancellation
    stays a cancellation).
    """
    now = asyncio.get_running_loop().time()
    at = now + limit_s
    budget = current_budget()
    by_budget = budget is not None and budget.at < at
    if budget is not None and by_budget:
        at = budget.at
        if at <= now:  # no attempt starts once the budget is spent
            _report(ctx, limit_s, by_budget=True, on_timeout=on_timeout)
            raise DeadlineExceeded(ctx.backend, limit_s, budget=True)
    scope = asyncio.timeout_at(at)
    try:
        async with scope:
            result = await call()
    except TimeoutError as exc:
        if not scope.expired():
            raise  # the backend's own TimeoutError: not ours to rename
        _report(ctx, limit_s, by_budget=by_budget, on_timeout=on_timeout)
        raise DeadlineExceeded(ctx.backend, limit_s, budget=by_budget) from exc
    except asyncio.CancelledError:
        # The enclosing deadline block fired at the same instant as this budget-bound
        # limit; report the expiry here, where the backend is known. An outside
        # cancellation (any other pending cancel) is never turned into a timeout.
        if budget is not None and by_budget and scope.expired() and budget.owns_pending_cancel():
            _report(ctx, limit_s, by_budget=True, on_timeout=on_timeout)
            raise DeadlineExceeded(ctx.backend, limit_s, budget=True) from None
        raise
    if scope.expired():  # the work swallowed its cancellation: still a timeout, never a success
        _report(ctx, limit_s, by_budget=by_budget, on_timeout=on_timeout)
        raise DeadlineExceeded(ctx.backend, limit_s, budget=by_budget)
    return result


def _report(
    ctx: CallContext, limit_s: float, *, by_budget: bool, on_timeout: Callable[[], None] | None
) -> None:
    if on_timeout is not None:
        on_timeout()
    events.emit(events.TimedOut(ctx.backend, ctx.attempt, limit_s, by_budget))


class TimeoutPolicy(Policy):
    """Fail an attempt with :class:`DeadlineExceeded` after a fixed number of seconds."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = check_seconds("timeout", seconds)

    @override
    async def execute(self, call: Call[T], ctx: CallContext) -> T:
        return await run_with_limit(call, ctx, self.seconds)


def timeout(seconds: float) -> TimeoutPolicy:
    """Limit each attempt to ``seconds`` (or the caller's remaining deadline, if tighter)."""
    return TimeoutPolicy(seconds)
