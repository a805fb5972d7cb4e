"""Events every policy reports, and the one observer hub they go through.

Event names are stable and documented (README, "Events"); payloads are frozen dataclasses.
The default sink logs with structlog; ``add_observer`` registers more (metrics, tests).
An observer that raises is logged and ignored: it never changes a call's outcome.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final, TypeAlias

import structlog

ATTEMPT_FAILED: Final = "resilience.attempt_failed"
RETRY_SCHEDULED: Final = "resilience.retry_scheduled"
RETRY_GAVE_UP: Final = "resilience.retry_gave_up"
TIMED_OUT: Final = "resilience.timed_out"
BREAKER_STATE_CHANGED: Final = "resilience.breaker_state_changed"
BREAKER_REJECTED: Final = "resilience.breaker_rejected"
FELL_BACK: Final = "resilience.fell_back"
ADAPTIVE_DEADLINE_MOVED: Final = "resilience.adaptive_deadline_moved"
QUEUE_REJECTED: Final = "resilience.queue_rejected"
TIER_STARTED: Final = "resilience.tier_started"
TIER_FINISHED: Final = "resilience.tier_finished"
OBSERVER_FAILED: Final = "resilience.observer_failed"


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all event payloads; ``name`` is the stable event name."""

    name: ClassVar[str]
    backend: str

    def fields(self) -> dict[str, object]:
        """The payload as a flat dict, for logs and metrics."""
        kind = type(self)
        names = _FIELD_NAMES.get(kind)
        if names is None:
            names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(self))
        return {name: getattr(self, name) for name in names}


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}


@dataclass(frozen=True, slots=True)
class AttemptFailed(Event):
    """One attempt raised; the retry policy decides what happens next."""

    name: ClassVar[str] = ATTEMPT_FAILED
    attempt: int
    error_type: str
    retryable: bool


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """A retry will start after ``delay_s`` seconds (``hinted``: the server chose it)."""

    name: ClassVar[str] = RETRY_SCHEDULED
    attempt: int
    delay_s: float
    error_type: str
    hinted: bool


@dataclass(frozen=True, slots=True)
class RetryGaveUp(Event):
    """No more retries: ``reason`` is ``attempts``, ``total_time``, ``deadline`` or ``hint``.

    ``hint``: the server asked to wait longer than the retry policy's ``max_hint_s``.
    """

    name: ClassVar[str] = RETRY_GAVE_UP
    attempt: int
    error_type: str
    reason: str


@dataclass(frozen=True, slots=True)
class TimedOut(Event):
    """An attempt hit its limit (``budget``: the caller's deadline was the tighter one)."""

    name: ClassVar[str] = TIMED_OUT
    attempt: int
    limit_s: float
    budget: bool


@dataclass(frozen=True, slots=True)
class BreakerStateChanged(Event):
    """The breaker moved between ``closed``, ``open`` and ``half_open``."""

    name: ClassVar[str] = BREAKER_STATE_CHANGED
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class BreakerRejected(Event):
    """An open (or saturated half-open) breaker failed a call fast."""

    name: ClassVar[str] = BREAKER_REJECTED
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class FellBack(Event):
    """A safe default replaced a failed call's result."""

    name: ClassVar[str] = FELL_BACK
    error_type: str
    programming_error: bool


@dataclass(frozen=True, slots=True)
class AdaptiveDeadlineMoved(Event):
    """The learned per-attempt timeout changed noticeably."""

    name: ClassVar[str] = ADAPTIVE_DEADLINE_MOVED
    old_s: float
    new_s: float
    samples: int


@dataclass(frozen=True, slots=True)
class QueueRejected(Event):
    """A concurrency-limited backend turned a call away (queue full or wait too long)."""

    name: ClassVar[str] = QUEUE_REJECTED
    reason: str


@dataclass(frozen=True, slots=True)
class TierStarted(Event):
    """A tier began; ``backend`` holds the tier's name."""

    name: ClassVar[str] = TIER_STARTED
    mode: str
    tasks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TierFinished(Event):
    """A tier ended; counts as in the tier's metadata."""

    name: ClassVar[str] = TIER_FINISHED
    mode: str
    duration_s: float
    succeeded: int
    failed: int
    skipped: int


#: What ``add_observer`` takes: any callable of one event.
Observer: TypeAlias = Callable[[Event], None]

_logger = structlog.get_logger("resilience")
_WARNINGS: Final = frozenset({ATTEMPT_FAILED, TIMED_OUT, FELL_BACK, QUEUE_REJECTED})
#: Per-call consequences of an open breaker: the breaker's opening is logged once; logging
#: every call it then turns away would flood the log during an outage (observers such as
#: metrics still receive each of them).
_OPEN_BREAKER = "CircuitOpenError"


def log_event(event: Event) -> None:
    """The default observer: one structlog line per event, but none per rejected call."""
    if event.name == BREAKER_REJECTED or getattr(event, "error_type", None) == _OPEN_BREAKER:
        return
    if isinstance(event, FellBack) and event.programming_error:
        _logger.error(event.name, **event.fields(), hint="a bug was hidden by a safe default")
    elif event.name in _WARNINGS:
        _logger.warning(event.name, **event.fields())
    else:
        _logger.info(event.name, **event.fields())


_observers: list[Observer] = [log_event]


def add_observer(observer: Observer) -> None:
    """Register an observer for every event (for example to forward to metrics)."""
    _observers.append(observer)


def remove_observer(observer: Observer) -> None:
    """Unregister an observer added with :func:`add_observer` (or the default logger)."""
    _observers.remove(observer)


def emit(event: Event) -> None:
    """Deliver an event to every observer; an observer's exception never escapes."""
    for observer in tuple(_observers):
        try:
            observer(event)
        except Exception:
            _logger.exception(OBSERVER_FAILED, observer=repr(observer), failed_event=event.name)
