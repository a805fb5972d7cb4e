"""Retries of transient failures, scheduled by tenacity, bounded by the caller's deadline.

Why not ``tenacity.AsyncRetrying`` itself: it builds its retry state and runs its action
chain on every call, success included, reads ``time.monotonic`` instead of the event
loop's clock, and knows neither the caller's deadline nor a server's retry hint. So the
first attempt here runs with no tenacity objects at all; only after a failure does
tenacity's ``wait`` and ``stop`` strategies compute the schedule, fed loop-clock times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from tenacity import RetryCallState, stop_after_attempt, stop_before_delay, wait_random_exponential
from typing_extensions import override

from resilience import events
from resilience._checks import check_count, check_seconds
from resilience.deadline import current_deadline
from resilience.errors import (
    PROGRAMMING_ERRORS,
    CircuitOpenError,
    TransientError,
    is_programming_error,
    retry_after_hint,
)
from resilience.pipeline import Call, CallContext, Policy

if TYPE_CHECKING:
    from tenacity.stop import stop_base
    from tenacity.wait import wait_base

T = TypeVar("T")

#: Failures retried by default: timeouts, connection errors, and declared-transient errors.
DEFAULT_TRANSIENT: tuple[type[Exception], ...] = (TimeoutError, ConnectionError, TransientError)

RetryOn = tuple[type[Exception], ...] | Callable[[Exception], bool]


class RetryPolicy(Policy):
    """Retry transient failures with exponential backoff and full jitter."""

    __slots__ = ("_max_hint_s", "_retry_on", "_stop", "_timed", "_wait")

    def __init__(
        self,
        *,
        wait: wait_base,
        stop: stop_base,
        retry_on: RetryOn,
        max_hint_s: float = float("inf"),
    ) -> None:
        self._wait = wait
        self._stop = stop
        self._retry_on = retry_on
        self._max_hint_s = max_hint_s
        # Only a stop that looks at elapsed time needs the start read before attempt 1.
        self._timed = not all(isinstance(p, stop_after_attempt) for p in _stop_parts(stop))

    def may_retry(self, kind: type[Exception]) -> bool:
        """Whether some error of type ``kind`` could be retried (``True`` for a predicate)."""
        if issubclass(kind, PROGRAMMING_ERRORS):
            return False
        return not isinstance(self._retry_on, tuple) or issubclass(kind, self._retry_on)

    def is_retryable(self, exc: Exception) -> bool:
        """Transient by the configured rule, and never a programming error."""
        if is_programming_error(exc):
            return False
        if isinstance(self._retry_on, tuple):
            return isinstance(exc, self._retry_on)
        return bool(self._retry_on(exc))

    @override
    async def execute(self, call: Call[T], ctx: CallContext) -> T:
        loop = asyncio.get_running_loop()
        started = loop.time() if self._timed else 0.0
        try:
            return await call(ctx)
        except Exception as exc:
            if self._final(exc, ctx):
                raise
            failure = exc
        return await self._retry(call, ctx, loop, started, failure)

    async def _retry(
        self,
        call: Call[T],
        ctx: CallContext,
        loop: asyncio.AbstractEventLoop,
        started: float,
        failure: Exception,
    ) -> T:
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]  # strategies only
        state.start_time = started
        while True:
            error_type = type(failure).__name__
            events.emit(events.AttemptFailed(ctx.backend, ctx.attempt, error_type, retryable=True))
            now = loop.time()
            state.attempt_number = ctx.attempt
            state.outcome_timestamp = now
            hint = retry_after_hint(failure)
            delay = hint if hint is not None else float(self._wait(state))
            state.upcoming_sleep = delay
            budget = current_deadline()
            reason = None
            if self._stop(state):
                reason = "attempts" if self._out_of_attempts(state) else "total_time"
            elif budget is not None and now + delay >= budget:
                reason = "deadline"
            elif hint is not None and hint > self._max_hint_s:
                reason = "hint"  # the server asks for longer than this caller would wait
            if reason is not None:
                events.emit(events.RetryGaveUp(ctx.backend, ctx.attempt, error_type, reason))
                raise failure
            events.emit(
                events.RetryScheduled(
                    ctx.backend, ctx.attempt, delay, error_type, hinted=hint is not None
                )
            )
            await asyncio.sleep(delay)
            ctx.attempt += 1
            try:
                return await call(ctx)
            except Exception as exc:
                if self._final(exc, ctx):
                    raise
                failure = exc

    def _final(self, exc: Exception, ctx: CallContext) -> bool:
        """Whether ``exc`` ends the call at once; reports it unless a breaker already did."""
        if self.is_retryable(exc):
            return False
        if not isinstance(exc, CircuitOpenError):  # the breaker reported its own rejection
            events.emit(
                events.AttemptFailed(ctx.backend, ctx.attempt, type(exc).__name__, retryable=False)
            )
        return True

    def _out_of_attempts(self, state: RetryCallState) -> bool:
        return any(isinstance(s, stop_after_attempt) and s(state) for s in _stop_parts(self._stop))


def _stop_parts(stop: stop_base) -> tuple[stop_base, ...]:
    return tuple(getattr(stop, "stops", (stop,)))


def retry(
    *,
    attempts: int = 3,
    initial_delay_s: float = 0.1,
    max_delay_s: float = 10.0,
    total_time_s: float | None = None,
    retry_on: RetryOn = DEFAULT_TRANSIENT,
    wait: wait_base | None = None,
    stop: stop_base | None = None,
    max_hint_s: float | None = None,
) -> RetryPolicy:
    """Retry transient failures.

    The schedule is tenacity's full-jitter exponential backoff (``initial_delay_s`` doubling
    up to ``max_delay_s``), stopping after ``attempts`` attempts or ``total_time_s``
    seconds; pass tenacity ``wait``/``stop`` strategies to replace either. A server hint
    (``retry_after_s`` on the exception) replaces the computed delay; a hint longer than
    ``max_hint_s`` (default ``max_delay_s``) ends the retries instead. Never retries
    cancellation or programming errors; when it gives up it raises the last real error.
    """
    check_count("attempts", attempts)
    if isinstance(retry_on, tuple):
        for kind in retry_on:
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                raise TypeError(f"retry_on takes Exception subclasses, not {kind!r}")
    elif not callable(retry_on):
        raise TypeError(
            f"retry_on must be a tuple of exception types or a predicate, got {retry_on!r}"
        )
    if wait is None:
        wait = wait_random_exponential(
            multiplier=check_seconds("initial_delay_s", initial_delay_s),
            max=check_seconds("max_delay_s", max_delay_s),
        )
    if stop is None:
        stop = stop_after_attempt(attempts)
        if total_time_s is not None:
            stop = stop | stop_before_delay(check_seconds("total_time_s", total_time_s))
    max_hint_s = check_seconds("max_hint_s", max_delay_s if max_hint_s is None else max_hint_s)
    return RetryPolicy(wait=wait, stop=stop, retry_on=retry_on, max_hint_s=max_hint_s)
