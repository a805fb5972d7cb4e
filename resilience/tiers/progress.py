"""Progress of one tier run, event by event, for a service that streams it to a client.

These payloads go to the run's ``on_event`` callback and to :meth:`Tier.stream`, not to
the observer hub: a request's progress belongs to that request. The hub receives the
tier's start and finish (``resilience.tier_started`` / ``resilience.tier_finished``),
which the run's callback receives too, first and last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final, TypeAlias

import structlog

from resilience.events import OBSERVER_FAILED, Event

if TYPE_CHECKING:
    from collections.abc import Callable

TASK_STARTED: Final = "resilience.task_started"
TASK_SUCCEEDED: Final = "resilience.task_succeeded"
TASK_FAILED: Final = "resilience.task_failed"
TASK_TIMED_OUT: Final = "resilience.task_timed_out"
TASK_SKIPPED: Final = "resilience.task_skipped"

#: What ``on_event`` takes: any callable of one event (its return value is ignored).
ProgressCallback: TypeAlias = "Callable[[Event], object]"

_logger = structlog.get_logger("resilience")


@dataclass(frozen=True, slots=True)
class TaskStarted(Event):
    """A task's call began (``backend`` is the task's backend)."""

    name: ClassVar[str] = TASK_STARTED
    tier: str
    key: str


@dataclass(frozen=True, slots=True)
class TaskSucceeded(Event):
    """A task's call returned; its result will be written to ``key``."""

    name: ClassVar[str] = TASK_SUCCEEDED
    tier: str
    key: str
    duration_s: float
    attempts: int


@dataclass(frozen=True, slots=True)
class TaskFailed(Event):
    """A task's key will hold its default; ``status`` is ``failed`` or ``fallback``."""

    name: ClassVar[str] = TASK_FAILED
    tier: str
    key: str
    status: str
    duration_s: float
    attempts: int
    error_type: str


@dataclass(frozen=True, slots=True)
class TaskTimedOut(Event):
    """The tier's timeout cut the task short (or it never started); its key gets the default."""

    name: ClassVar[str] = TASK_TIMED_OUT
    tier: str
    key: str
    duration_s: float


@dataclass(frozen=True, slots=True)
class TaskSkipped(Event):
    """The task's enable condition was off; its key gets the default."""

    name: ClassVar[str] = TASK_SKIPPED
    tier: str
    key: str


def deliver(on_event: ProgressCallback, event: Event) -> None:
    """Hand ``event`` to a run's callback; a callback that raises never changes the run."""
    try:
        on_event(event)
    except Exception:
        _logger.exception(OBSERVER_FAILED, observer=repr(on_event), failed_event=event.name)
