"""Circuit breakers: aiobreaker keeps the state, this module decides admission.

aiobreaker stores the state and the consecutive-failure counter (in its in-memory
storage) and notifies its listeners of transitions, which we relay as events. The
opening time, trial slots and generations live here, on the loop's clock, so a breaker
is per process. aiobreaker falls short in three ways this module fixes:

* time: it stamps ``opened_at`` with ``datetime.utcnow()`` but reports reopen times
  from ``datetime.now()``, so "seconds until retry" is off by the UTC offset outside UTC,
  and wall-clock time cannot be moved by a test without freezing the event loop. Here
  every timestamp is the event loop's monotonic clock.
* half-open: it lets every call through while half-open; here at most
  ``half_open_max_calls`` trial calls are admitted, and a trial that is cancelled gives
  its slot back, while one that hangs longer than the reset timeout counts as failed.
* errors: the call that trips it raises ``CircuitBreakerError``; here it raises its own
  error, and cancellation or a programming error is never counted as a failure.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import aiobreaker
from typing_extensions import override

from resilience import events
from resilience._checks import check_count, check_seconds
from resilience._shared import Registry
from resilience.errors import (
    CircuitOpenError,
    ClientError,
    DeadlineExceeded,
    is_programming_error,
)
from resilience.pipeline import Call, CallContext, Policy

if TYPE_CHECKING:
    from collections.abc import Iterable

T = TypeVar("T")

CLOSED = aiobreaker.CircuitBreakerState.CLOSED
OPEN = aiobreaker.CircuitBreakerState.OPEN
HALF_OPEN = aiobreaker.CircuitBreakerState.HALF_OPEN


class _Trial:
    """A half-open trial call's slot."""

    __slots__ = ("generation", "started")

    def __init__(self, generation: int, started: float) -> None:
        self.generation = generation
        self.started = started


class _StateEvents(aiobreaker.CircuitBreakerListener):  # type: ignore[misc]  # untyped base
    """Relays aiobreaker's state changes to the observer hub."""

    def __init__(self, name: str) -> None:
        self._name = name

    def state_change(self, breaker: Any, old: Any, new: Any) -> None:  # noqa: ARG002, ANN401
        old_name = old.state.name.lower() if old is not None else "none"
        events.emit(events.BreakerStateChanged(self._name, old_name, new.state.name.lower()))


class Breaker:
    """One backend's breaker state, shared by every pipeline that names it."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout_s: float = 30.0,
        half_open_max_calls: int = 1,
        exclude: Iterable[type[Exception]] = (),
    ) -> None:
        check_count("failure_threshold", failure_threshold)
        check_count("half_open_max_calls", half_open_max_calls)
        self.name = name
        self.reset_timeout_s = check_seconds("reset_timeout_s", reset_timeout_s)
        self.half_open_max_calls = half_open_max_calls
        self.settings = (
            failure_threshold,
            self.reset_timeout_s,
            half_open_max_calls,
            tuple(exclude),
        )
        self._aio = aiobreaker.CircuitBreaker(
            fail_max=failure_threshold,
            timeout_duration=timedelta(seconds=self.reset_timeout_s),
            exclude=[ClientError, *exclude],
            listeners=[_StateEvents(name)],
            name=name,
        )
        self._storage = self._aio._state_storage  # noqa: SLF001 - aiobreaker exposes no getter
        self._opened_at = 0.0
        self._generation = 0  # bumped on every transition: stale outcomes are ignored
        self._trials: list[_Trial] = []
        self._trial_successes = 0

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        return str(self._storage.state.name.lower())

    @property
    def failure_count(self) -> int:
        """Consecutive failures counted while closed."""
        return int(self._storage.counter)

    def admit(self, now: float) -> _Trial | int:
        """Let a call through (returning its ticket) or raise :class:`CircuitOpenError`.

        Synchronous on purpose: with no ``await`` between check and update, concurrent
        callers cannot both take the last trial slot.
        """
        state = self._storage.state
        if state is CLOSED:
            return self._generation
        wait = self.rejection(now)
        if wait is not None:
            self._reject(wait)
        if state is OPEN:  # the reset timeout has passed
            self._move(HALF_OPEN)
        elif len(self._trials) >= self.half_open_max_calls:  # a hung trial's lease ran out
            self._move(OPEN, now)  # count it as failed
            self._reject(self.reset_timeout_s)
        trial = _Trial(self._generation, now)
        self._trials.append(trial)
        return trial

    def reset(self) -> None:
        """Back to closed with no failures counted, quietly (no state-change event)."""
        self._generation += 1
        self._trials.clear()
        self._trial_successes = 0
        self._opened_at = 0.0
        self._storage.state = CLOSED
        self._storage.reset_counter()
        self._aio._state = self._aio._create_new_state(CLOSED)  # noqa: SLF001 - no notify

    @property
    def is_closed(self) -> bool:
        """Whether calls pass freely (no clock read needed to admit them)."""
        return self._storage.state is CLOSED

    @property
    def generation(self) -> int:
        """Ticket of a call admitted while closed; changes on every transition."""
        return self._generation

    def rejection(self, now: float) -> float | None:
        """Seconds until a call may pass, if one would be turned away now; else ``None``.

        Changes nothing: ``None`` also when admitting would first need a transition
        (the reset timeout passed, or a hung trial's lease ran out).
        """
        state = self._storage.state
        if state is OPEN:
            reopen_at = self._opened_at + self.reset_timeout_s
            return reopen_at - now if now < reopen_at else None
        if state is HALF_OPEN and len(self._trials) >= self.half_open_max_calls:
            lease_ends = min(trial.started for trial in self._trials) + self.reset_timeout_s
            return lease_ends - now if now < lease_ends else None
        return None

    def report_rejection(self, retry_after_s: float) -> float:
        """Report a call turned away; returns the (non-negative) seconds until a retry."""
        retry_after_s = max(retry_after_s, 0.0)
        events.emit(events.BreakerRejected(self.name, retry_after_s))
        return retry_after_s

    def record_success(self, ticket: _Trial | int) -> None:
        """A call admitted with ``ticket`` returned."""
        if isinstance(ticket, int):
            if ticket == self._generation and self._storage.counter:
                self._storage.reset_counter()
            return
        if self._release(ticket):
            self._trial_successes += 1
            if self._trial_successes >= self.half_open_max_calls:
                self._move(CLOSED)

    def record_failure(self, ticket: _Trial | int, exc: Exception, now: float) -> None:
        """A call admitted with ``ticket`` raised ``exc``."""
        if not self._aio.is_system_error(exc):  # excluded: a healthy backend's answer
            self.record_success(ticket)
            return
        if isinstance(ticket, int):
            if ticket == self._generation:
                self._storage.increment_counter()
                if self._storage.counter >= self._aio.fail_max:
                    self._move(OPEN, now)
            return
        if self._release(ticket):
            self._move(OPEN, now)

    def record_neutral(self, ticket: _Trial | int) -> None:
        """A call ended without telling anything about the backend (cancelled, a bug)."""
        if isinstance(ticket, _Trial):
            self._release(ticket)

    def _release(self, trial: _Trial) -> bool:
        if trial.generation != self._generation or trial not in self._trials:
            return False
        self._trials.remove(trial)
        return True

    def _move(self, state: aiobreaker.CircuitBreakerState, now: float = 0.0) -> None:
        self._generation += 1
        self._trials.clear()
        self._trial_successes = 0
        if state is OPEN:
            self._opened_at = now
            self._aio.open()
        elif state is HALF_OPEN:
            self._aio.half_open()
        else:
            self._aio.close()

    def _reject(self, retry_after_s: float) -> NoReturn:
        raise CircuitOpenError(self.name, self.report_rejection(retry_after_s))


_breakers: Registry[Breaker] = Registry("breaker")


def shared_breaker(name: str, **settings: Any) -> Breaker:  # noqa: ANN401 - Breaker's options
    """The process-wide breaker called ``name``, created on first use."""
    return _breakers.get(name, lambda: Breaker(name, **settings))


def reset_breakers() -> None:
    """Close every shared breaker in place and forget their names (between tests)."""
    _breakers.reset()


class CircuitBreakerPolicy(Policy):
    """Fail fast while a backend is down; bound to one shared :class:`Breaker`."""

    __slots__ = ("_breaker", "_name", "_settings")

    def __init__(
        self, name: str | None, settings: dict[str, Any], breaker: Breaker | None = None
    ) -> None:
        if breaker is None:
            Breaker("validation", **settings)  # fail at build time, not on first call
        self._name = name
        self._settings = settings
        self._breaker = breaker

    @property
    def breaker(self) -> Breaker:
        """The breaker this policy uses (after binding to a backend)."""
        if self._breaker is None:
            raise RuntimeError("circuit_breaker() without a name is bound when it wraps a function")
        return self._breaker

    @override
    def bind(self, backend: str) -> CircuitBreakerPolicy:
        if self._breaker is not None:
            return self
        breaker = shared_breaker(self._name or backend, **self._settings)
        return CircuitBreakerPolicy(self._name, self._settings, breaker)

    @override
    async def execute(self, call: Call[T], ctx: CallContext) -> T:
        breaker = self._breaker or self.bound(ctx.backend).breaker
        loop = asyncio.get_running_loop()
        ticket = breaker.generation if breaker.is_closed else breaker.admit(loop.time())
        try:
            result = await call(ctx)
        except Exception as exc:
            if is_programming_error(exc) or _out_of_budget(exc):
                breaker.record_neutral(ticket)
            else:
                breaker.record_failure(ticket, exc, loop.time())
            raise
        except BaseException:  # cancellation, KeyboardInterrupt: says nothing of the backend
            breaker.record_neutral(ticket)
            raise
        breaker.record_success(ticket)
        return result


def _out_of_budget(exc: Exception) -> bool:
    """The caller's deadline ran out: that says nothing about the backend's health."""
    return isinstance(exc, DeadlineExceeded) and exc.budget


def circuit_breaker(
    *,
    name: str | None = None,
    failure_threshold: int = 5,
    reset_timeout_s: float = 30.0,
    half_open_max_calls: int = 1,
    exclude: Iterable[type[Exception]] = (),
) -> CircuitBreakerPolicy:
    """Open after ``failure_threshold`` consecutive failures; try again after the reset timeout.

    Breakers are shared by ``name`` (default: the backend name) within a process. While
    open, calls raise :class:`CircuitOpenError` with the seconds until a trial is allowed.
    ``exclude`` lists errors that are a healthy backend's answer (not counted as failures);
    :class:`ClientError` always is.
    """
    settings = {
        "failure_threshold": failure_threshold,
        "reset_timeout_s": reset_timeout_s,
        "half_open_max_calls": half_open_max_calls,
        "exclude": tuple(exclude),
    }
    return CircuitBreakerPolicy(name, settings)
