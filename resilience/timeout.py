"""Per-attempt time limits on the event loop's clock."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import override

from resilience import events
from resilience._checks import check_seconds
from resilience._expiry import Deadline, Expiries
from resilience.deadline import current_deadline
from resilience.errors import DeadlineExceeded
from resilience.pipeline import Call, CallContext, Policy

if TYPE_CHECKING:
    from collections.abc import Coroutine

T = TypeVar("T")


class _QuietContext(threading.local):
    """One empty ``contextvars.Context`` per thread for the expiry callbacks.

    The callback only cancels a task, so it needs no copy of the caller's context; by
    default ``call_at`` copies it for every attempt, one more object per call in flight.
    Per thread, because a context cannot be entered by two running loops at once.
    """

    def __init__(self) -> None:
        self.context = contextvars.Context()


_quiet = _QuietContext()


class _Expiry:
    """One attempt's own timer: cancels the task at ``at`` and remembers that it did."""

    __slots__ = ("fired", "handle", "task")

    def __init__(
        self, task: asyncio.Task[object], loop: asyncio.AbstractEventLoop, at: float
    ) -> None:
        self.task = task
        self.fired = False
        self.handle = loop.call_at(at, self, context=_quiet.context)

    def __call__(self) -> None:
        self.fired = True
        self.task.cancel()

    def clear(self) -> None:
        """The attempt ended: the timer must not fire."""
        self.handle.cancel()


async def run_with_limit(
    call: Call[T],
    ctx: CallContext,
    limit_s: float,
    now: float | None = None,
    shared: Expiries | None = None,
) -> T:
    """Await ``call`` within ``limit_s`` or the caller's budget, whichever ends first.

    The work runs in the caller's task, so timed-out work has been cancelled and has
    finished unwinding before :class:`DeadlineExceeded` is raised. A cancellation
    becomes a timeout only when this timer fired and no other cancellation is pending
    (``Task.cancelling``), so an outside cancellation stays a cancellation.

    Why not ``asyncio.timeout_at``: the same semantics with a bare timer handle cost
    half as much, and this sits on every backend call. With ``shared`` (the deadlines of
    one fixed ``limit_s`` on this loop) no timer is armed per attempt at all, unless the
    caller's budget ends first.
    """
    loop = asyncio.get_running_loop()
    if now is None:
        now = loop.time()
    at, by_budget = _attempt_end(ctx, limit_s, now)
    task = asyncio.current_task(loop)
    if task is None:
        raise RuntimeError("resilience timeouts must run inside an asyncio task")
    cancelling = task.cancelling()
    expiry: _Expiry | Deadline
    if shared is not None and not by_budget:
        expiry = shared.start(now, task)
    else:
        expiry = _Expiry(task, loop, at)
    try:
        result = await call(ctx)
    except asyncio.CancelledError as exc:
        if not expiry.fired:
            raise
        ending = _ending(task, cancelling, ctx, limit_s, by_budget=by_budget)
        if isinstance(ending, asyncio.CancelledError):
            raise  # the outside cancellation, as it came
        raise ending from exc
    except Exception as exc:
        if not expiry.fired:
            raise  # includes the backend's own TimeoutError: not ours to rename
        raise _ending(task, cancelling, ctx, limit_s, by_budget=by_budget) from exc
    finally:
        expiry.clear()
    if expiry.fired:  # the work swallowed its cancellation: still a timeout, never a success
        raise _ending(task, cancelling, ctx, limit_s, by_budget=by_budget)
    return result


def _ending(
    task: asyncio.Task[Any], cancelling: int, ctx: CallContext, limit_s: float, *, by_budget: bool
) -> BaseException:
    """How an attempt whose timer fired ends: a timeout, unless the caller cancelled too.

    Takes back this timer's cancellation request; any request left is an outside one (or
    an enclosing deadline block's, fired at the same instant), which must go on so that
    everything else it covers stops too.
    """
    if task.uncancel() > cancelling:
        return asyncio.CancelledError()
    return _expired(ctx, limit_s, by_budget=by_budget)


def _attempt_end(ctx: CallContext, limit_s: float, now: float) -> tuple[float, bool]:
    """When this attempt must end, and whether the caller's budget is what binds it."""
    at = now + limit_s
    budget = current_deadline()
    if budget is None or budget > at:
        return at, False
    if budget <= now:  # no attempt starts once the budget is spent
        raise _expired(ctx, limit_s, by_budget=True)
    return budget, True


def _expired(ctx: CallContext, limit_s: float, *, by_budget: bool) -> DeadlineExceeded:
    events.emit(events.TimedOut(ctx.backend, ctx.attempt, limit_s, budget=by_budget))
    return DeadlineExceeded(ctx.backend, limit_s, budget=by_budget)


class TimeoutPolicy(Policy):
    """Fail an attempt with :class:`DeadlineExceeded` after a fixed number of seconds."""

    __slots__ = ("_expiries", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = check_seconds("timeout", seconds)
        self._expiries: Expiries | None = None

    @override
    def execute(self, call: Call[T], ctx: CallContext) -> Coroutine[Any, Any, T]:
        # Hands back run_with_limit's coroutine instead of awaiting it in one more frame:
        # every frame is an object the garbage collector rescans per call in flight.
        loop = asyncio.get_running_loop()
        expiries = self._expiries
        if expiries is None or expiries.loop is not loop:
            expiries = self._expiries = Expiries(loop, self.seconds)
        return run_with_limit(call, ctx, self.seconds, loop.time(), expiries)


def timeout(seconds: float) -> TimeoutPolicy:
    """Limit each attempt to ``seconds`` (or the caller's remaining deadline, if tighter)."""
    return TimeoutPolicy(seconds)
