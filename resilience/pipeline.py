"""Policies as middleware, and the pipeline that folds them around a call.

A policy receives the next step (a zero-argument callable returning an awaitable) and the
call's :class:`CallContext`, and returns the result or raises. ``compose(a, b, c)`` runs
``a`` outermost, exactly like stacking ``@a @b @c``: stacking decorators on an already
wrapped function fuses them into one pipeline, so the two are the same code path.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from typing_extensions import override

P = ParamSpec("P")
T = TypeVar("T")

Call = Callable[[], Awaitable[T]]


class CallContext:
    """What every policy knows about one call: its backend and current attempt."""

    __slots__ = ("attempt", "backend")

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.attempt = 1


class Policy(ABC):
    """One resilience step. Also a decorator for ``async def`` functions."""

    @abstractmethod
    async def execute(self, call: Call[T], ctx: CallContext) -> T:
        """Run ``call`` under this policy."""

    def bind(self, backend: str) -> Policy:  # noqa: ARG002 - hook for per-backend state
        """The policy as used for ``backend`` (breakers and learned deadlines are per backend)."""
        return self

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        """Decorate ``fn``: same signature, calls run through this policy."""
        return Pipeline((self,))(fn)


# wrapper -> (pipeline, wrapped function): lets stacked decorators fuse into one pipeline
# without putting attributes on the wrapper.
_wrapped: weakref.WeakKeyDictionary[Callable[..., Any], tuple[Pipeline, Callable[..., Any]]] = (
    weakref.WeakKeyDictionary()
)


def _is_async_callable(fn: object) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - instances with ``async def __call__``
    return not inspect.isroutine(fn) and inspect.iscoroutinefunction(call)


class Pipeline(Policy):
    """Policies folded outer-first; a decorator and a policy itself (pipelines nest)."""

    __slots__ = ("backend", "policies")

    def __init__(self, policies: tuple[Policy, ...], backend: str | None = None) -> None:
        for policy in policies:
            if not isinstance(policy, Policy):
                raise TypeError(f"compose() takes policies, got {policy!r}")
        self.policies = policies
        self.backend = backend

    @override
    async def execute(self, call: Call[T], ctx: CallContext) -> T:
        return await _run(self.policies, call, ctx)

    @override
    def bind(self, backend: str) -> Pipeline:
        """Bind every policy to ``backend`` (done once, when a function is decorated)."""
        return Pipeline(tuple(p.bind(backend) for p in self.policies), backend)

    @override
    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        inner = _wrapped.get(fn) if inspect.isfunction(fn) else None  # our wrappers are functions
        if inner is not None:  # stacked decorators: fuse, outer policies first
            inner_pipeline, fn = inner
            backend = inner_pipeline.backend or self.backend
            return Pipeline(self.policies + inner_pipeline.policies, backend)(fn)
        if not _is_async_callable(fn):
            raise TypeError(
                f"resilience policies wrap async functions; {fn!r} is not an async callable "
                "(use 'async def', or run blocking code with asyncio.to_thread)"
            )
        backend = self.backend or getattr(fn, "__qualname__", None) or type(fn).__qualname__
        bound = self.bind(backend)
        policies = bound.policies

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await _run(
                policies, functools.partial(fn, *args, **kwargs), CallContext(backend)
            )

        _wrapped[wrapper] = (Pipeline(self.policies, self.backend), fn)
        return wrapper


def _run(policies: tuple[Policy, ...], call: Call[T], ctx: CallContext) -> Awaitable[T]:
    step: Call[T] = call
    for policy in reversed(policies):
        step = functools.partial(policy.execute, step, ctx)
    return step()


def compose(*policies: Policy, backend: str | None = None) -> Pipeline:
    """Fold policies into one pipeline, outermost first, as stacked decorators would."""
    return Pipeline(policies, backend)
