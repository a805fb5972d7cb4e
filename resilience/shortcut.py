"""The front door of a decorated function: the outermost safe default and open breakers.

A decorated function runs an outermost safe default itself rather than as one more
coroutine in the chain (:func:`front` splits it off), and turns a call away at the
door when an open breaker would reject it anyway.

For the canonical ``safe_default -> retry -> circuit_breaker -> ...`` pipeline, a call that
meets an open breaker ends in the default after raising ``CircuitOpenError`` through every
policy in between. While a backend is down that is every call, and shedding load is what
the breaker is for, so the pipeline asks the breaker first: when it would reject without
changing state, the default is returned at once, with the same events
(``breaker_rejected``, then ``fell_back``) and the same value as the long way round.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from resilience import events
from resilience.breaker import CircuitBreakerPolicy
from resilience.errors import CircuitOpenError, DefaultFactoryError
from resilience.fallback import SafeDefault
from resilience.retry import RetryPolicy

if TYPE_CHECKING:
    from resilience.breaker import Breaker
    from resilience.pipeline import Policy

#: What :meth:`OpenBreakerShortcut.refuse` returns when the call must take the long way.
PASS: Final = object()
_REJECTED: Final = CircuitOpenError.__name__


class OpenBreakerShortcut:
    """The safe default and the breaker of a pipeline whose rejections can be short-cut."""

    __slots__ = ("_breaker", "_fallback")

    def __init__(self, fallback: SafeDefault[object], breaker: Breaker) -> None:
        self._fallback = fallback
        self._breaker = breaker

    @classmethod
    def find(cls, policies: tuple[Policy, ...]) -> OpenBreakerShortcut | None:
        """The shortcut, if only policies that pass a rejection through sit in between."""
        if not policies or not isinstance(policies[0], SafeDefault):
            return None
        fallback = policies[0]
        if not fallback.catches(CircuitOpenError):
            return None
        for policy in policies[1:]:
            if isinstance(policy, CircuitBreakerPolicy):
                return cls(fallback, policy.breaker)
            if not isinstance(policy, RetryPolicy) or policy.may_retry(CircuitOpenError):
                return None
        return None

    @property
    def closed(self) -> bool:
        """Whether the breaker lets calls through (the cheap check made on every call)."""
        return self._breaker.is_closed

    def refuse(self, backend: str) -> object:
        """The default if the breaker would turn the call away now, else :data:`PASS`.

        No ``CircuitOpenError`` is built: nobody would see it unless the default's factory
        raises, and then it is built to be chained as the long way would.
        """
        breaker = self._breaker
        wait = breaker.rejection(asyncio.get_running_loop().time())
        if wait is None:
            return PASS
        wait = breaker.report_rejection(wait)
        events.emit(events.FellBack(backend, _REJECTED, programming_error=False))
        try:
            return self._fallback.make_default(backend)
        except DefaultFactoryError as exc:
            failure = CircuitOpenError(breaker.name, wait)
            raise DefaultFactoryError(backend, exc.factory, exc.factory_error, failure) from failure


def front(
    policies: tuple[Policy, ...],
) -> tuple[SafeDefault[object] | None, OpenBreakerShortcut | None, tuple[Policy, ...]]:
    """A pipeline's outermost safe default, its open-breaker shortcut, and the rest."""
    shortcut = OpenBreakerShortcut.find(policies)
    if policies and isinstance(policies[0], SafeDefault):
        return policies[0], shortcut, policies[1:]
    return None, shortcut, policies
