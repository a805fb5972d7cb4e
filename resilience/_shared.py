"""Per-process state shared by name: breakers, bulkheads and learned deadlines.

Every pipeline that names the same backend must see the same state, or a breaker would
open for some callers only. Resetting (between tests) resets every instance in place,
since functions decorated earlier keep the instance they were bound to, and forgets the
names so the next test may configure them afresh.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable


class Shareable(Protocol):
    """What a registry holds: options to compare, and state to reset."""

    @property
    def settings(self) -> object:
        """What two users of one shared instance must agree on."""
        ...

    def reset(self) -> None:
        """Back to the state of a new instance."""
        ...


S = TypeVar("S", bound=Shareable)


class Registry(Generic[S]):
    """Instances of one kind by name, made on first use."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._by_name: dict[Hashable, S] = {}
        self._every: weakref.WeakSet[S] = weakref.WeakSet()

    def get(self, name: Hashable, make: Callable[[], S]) -> S:
        """The instance called ``name``; asking again with other settings is an error.

        Two configurations silently sharing one state would make either of them a lie.
        """
        candidate = make()
        existing = self._by_name.setdefault(name, candidate)
        if existing is not candidate and existing.settings != candidate.settings:
            raise ValueError(
                f"{self._kind} {name!r} already exists with settings {existing.settings}, "
                f"not {candidate.settings}"
            )
        self._every.add(existing)
        return existing

    def reset(self) -> None:
        """Reset every instance still in use, in place, and forget the names."""
        for instance in list(self._every):
            instance.reset()
        self._by_name.clear()
