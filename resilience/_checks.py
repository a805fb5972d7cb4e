"""Checks of options when a policy is built: a bad value fails there, not on a request."""

from __future__ import annotations

import functools
import inspect


def check_seconds(name: str, value: float) -> float:
    """Reject zero, negative, ``nan`` and ``inf`` durations."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value < float("inf")
    ):
        raise ValueError(f"{name} must be a positive finite number of seconds, got {value!r}")
    return float(value)


def check_count(name: str, value: int, minimum: int = 1) -> int:
    """Reject anything but an integer of at least ``minimum`` (``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def is_async_callable(fn: object) -> bool:
    """``async def`` functions and methods, partials of them, objects with ``async __call__``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    return not inspect.isroutine(fn) and inspect.iscoroutinefunction(type(fn).__call__)
