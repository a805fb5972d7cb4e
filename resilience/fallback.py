"""Safe defaults: a failed call returns a fresh default instead of raising."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Generic, ParamSpec, TypeVar, cast, overload

from typing_extensions import override

from resilience import events
from resilience.errors import DefaultFactoryError, is_programming_error
from resilience.pipeline import Call, CallContext, Pipeline, Policy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

P = ParamSpec("P")
T = TypeVar("T")
D = TypeVar("D")


_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes)


class SafeDefault(Policy, Generic[D]):
    """Outermost policy: turn a failure into a default value (never a cancellation)."""

    __slots__ = ("_copy", "_default", "_on")

    def __init__(self, default: D | Callable[[], D], on: tuple[type[Exception], ...]) -> None:
        if not isinstance(on, tuple):
            raise TypeError(f"safe_default(on=...) takes a tuple of exception types, got {on!r}")
        for kind in on:
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                raise TypeError(
                    f"safe_default can only catch Exception subclasses, not {kind!r}: "
                    "cancellation, KeyboardInterrupt and SystemExit must propagate"
                )
        self._default = default
        self._on = on
        self._copy = not callable(default) and not isinstance(default, _IMMUTABLE)
        if self._copy:
            try:  # a value that cannot be copied fails here, not on the first failure
                copy.deepcopy(default)
            except Exception as exc:
                raise TypeError(
                    f"safe_default value {default!r} cannot be copied for each failure; "
                    "pass a factory that makes one instead"
                ) from exc

    def make_default(self, backend: str, failure: BaseException | None = None) -> D:
        """A fresh default: the factory's result, or a copy of a mutable value."""
        default = self._default
        if not callable(default):
            return copy.deepcopy(default) if self._copy else default
        try:
            return default()
        except Exception as exc:  # noqa: BLE001 - whatever it raised, say it was the factory
            raise DefaultFactoryError(backend, default, exc, failure) from failure

    @override
    async def execute(self, call: Call[T], ctx: CallContext) -> T:
        try:
            return await call(ctx)
        except self._on as exc:
            return cast("T", self.replace(exc, ctx.backend))

    @property
    def catching(self) -> tuple[type[Exception], ...]:
        """The exception types replaced by the default."""
        return self._on

    def catches(self, kind: type[Exception]) -> bool:
        """Whether a failure of this type is replaced by the default."""
        return issubclass(kind, self._on)

    def replace(self, failure: Exception, backend: str) -> D:
        """Report ``failure`` and return the default that stands in for the result."""
        bug = is_programming_error(failure)
        events.emit(events.FellBack(backend, type(failure).__name__, programming_error=bug))
        return self.make_default(backend, failure)

    @override
    def __call__(  # type: ignore[override]  # the default widens the result type
        self, fn: Callable[P, Awaitable[T]]
    ) -> Callable[P, Awaitable[T | D]]:
        return cast("Callable[P, Awaitable[T | D]]", Pipeline((self,))(fn))


@overload
def safe_default(
    default: Callable[[], D], *, on: tuple[type[Exception], ...] = ...
) -> SafeDefault[D]: ...
@overload
def safe_default(default: D, *, on: tuple[type[Exception], ...] = ...) -> SafeDefault[D]: ...
def safe_default(
    default: D | Callable[[], D], *, on: tuple[type[Exception], ...] = (Exception,)
) -> SafeDefault[D]:
    """On failure return ``default``: a value (deep-copied per failure) or a factory.

    Any callable is taken as a zero-argument factory and called per failure, so
    ``safe_default(list)`` gives each failed call its own list. ``on`` limits which
    exceptions are replaced; cancellation, ``KeyboardInterrupt`` and ``SystemExit`` never
    are. Programming errors are replaced too (one request survives a bug) but are
    reported as such, and the default logger logs them at error level.
    """
    return SafeDefault(default, on)
