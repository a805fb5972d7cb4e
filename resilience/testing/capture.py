"""Collecting the toolkit's events in a test."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self, TypeVar

from resilience.events import Event, add_observer, remove_observer

if TYPE_CHECKING:
    from types import TracebackType

E = TypeVar("E", bound=Event)


class EventCapture:
    """Records every event while active: ``with EventCapture() as events: ...``."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        """Record one event (the observer interface)."""
        self.events.append(event)

    def __enter__(self) -> Self:
        add_observer(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        remove_observer(self)

    def of(self, kind: type[E]) -> list[E]:
        """The captured events of one payload type, in order."""
        return [event for event in self.events if isinstance(event, kind)]

    def names(self) -> list[str]:
        """The captured event names, in order."""
        return [event.name for event in self.events]
