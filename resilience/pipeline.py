"""Policies as middleware, and the pipeline that folds them around a call.

A policy receives the next step and the call's :class:`CallContext`; it runs the step
with ``await call(ctx)`` (as many times as it likes) and returns the result or raises.
``compose(a, b, c)`` runs ``a`` outermost, exactly like stacking ``@a @b @c``: stacking
decorators on an already wrapped function fuses them into one pipeline, so the two are
the same code path.

The chain of steps is built once per decorated function, not per call: the call's
function and arguments travel in the context. A policy sits on every backend call, and
objects allocated per call are what the garbage collector rescans while thousands of
calls are in flight.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Self, TypeVar, cast, overload

from typing_extensions import override

from resilience._checks import is_async_callable

P = ParamSpec("P")
T = TypeVar("T")

#: The next step of a pipeline: give it the context, await what it returns.
Call = Callable[["CallContext"], Awaitable[T]]


class CallContext:
    """One call: its backend, the current attempt, and the function and arguments to run."""

    __slots__ = ("args", "attempt", "backend", "fn", "kwargs")

    def __init__(
        self,
        backend: str,
        fn: Callable[..., Awaitable[Any]] | None = None,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self.attempt = 1
        self.fn = fn
        self.args = args
        self.kwargs = kwargs


def invoke(ctx: CallContext) -> Awaitable[Any]:
    """The innermost step: call the function with its arguments (once per attempt)."""
    fn = ctx.fn
    if fn is None:
        raise RuntimeError("the call context has no function to call")
    if ctx.kwargs:
        return fn(*ctx.args, **ctx.kwargs)
    return fn(*ctx.args)


class Policy(ABC):
    """One resilience step. Also a decorator for ``async def`` functions."""

    @abstractmethod
    async def execute(self, call: Call[T], ctx: CallContext) -> T:
        """Run the next step (``await call(ctx)``) under this policy."""

    def bind(self, backend: str) -> Policy:  # noqa: ARG002 - hook for per-backend state
        """The policy as used for ``backend`` (breakers and learned deadlines are per backend)."""
        return self

    def bound(self, backend: str) -> Self:
        """``bind(backend)``, remembered: runners call :meth:`run` once per request."""
        cache: dict[str, Self] = self.__dict__.setdefault("_bound_by_backend", {})
        found = cache.get(backend)
        if found is None:
            found = cache[backend] = cast("Self", self.bind(backend))
        return found

    async def run(self, call: Callable[[], Awaitable[T]], ctx: CallContext) -> T:
        """Run a zero-argument ``call`` through this policy, bound to ``ctx.backend``."""
        ctx.fn, ctx.args, ctx.kwargs = call, (), None
        return await self.bound(ctx.backend).execute(invoke, ctx)

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        """Decorate ``fn``: same signature, calls run through this policy."""
        return Pipeline((self,))(fn)


# wrapper -> (pipeline, wrapped function): lets stacked decorators fuse into one pipeline
# without putting attributes on the wrapper.
_wrapped: weakref.WeakKeyDictionary[Callable[..., Any], tuple[Pipeline, Callable[..., Any]]] = (
    weakref.WeakKeyDictionary()
)


class Pipeline(Policy):
    """Policies folded outer-first; a decorator and a policy itself.

    A pipeline given to ``compose`` is spliced in place, so nesting costs nothing.
    """

    __slots__ = ("_entry", "backend", "policies")

    policies: tuple[Policy, ...]
    backend: str | None

    def __init__(self, policies: tuple[Policy, ...], backend: str | None = None) -> None:
        flat: list[Policy] = []
        for policy in policies:
            if isinstance(policy, Pipeline):
                flat.extend(policy.policies)
            elif isinstance(policy, Policy):
                flat.append(policy)
            else:
                raise TypeError(f"compose() takes policies, got {policy!r}")
        self.policies = tuple(flat)
        self.backend = backend
        self._entry: Call[Any] = _chain(self.policies, invoke)

    @override
    async def execute(self, call: Call[T], ctx: CallContext) -> T:
        result: T = await _chain(self.bound(ctx.backend).policies, call)(ctx)
        return result

    @override
    async def run(self, call: Callable[[], Awaitable[T]], ctx: CallContext) -> T:
        ctx.fn, ctx.args, ctx.kwargs = call, (), None
        result: T = await self.bound(ctx.backend)._entry(ctx)  # noqa: SLF001 - same class
        return result

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
        if not is_async_callable(fn):
            raise TypeError(
                f"resilience policies wrap async functions; {fn!r} is not an async callable "
                "(use 'async def', or run blocking code with asyncio.to_thread)"
            )
        backend = self.backend or default_backend_name(fn)
        from resilience.shortcut import PASS, front  # noqa: PLC0415 - an import cycle

        # An outermost safe default runs in the wrapper itself, one coroutine less per
        # call in flight; the shortcut answers for an open breaker at the door.
        fallback, shortcut, rest = front(self.bind(backend).policies)
        entry = _chain(rest, invoke)

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            if shortcut is not None and not shortcut.closed:
                default = shortcut.refuse(backend)
                if default is not PASS:
                    return default  # type: ignore[return-value]  # the safe default's value
            ctx = CallContext(backend, fn, args, kwargs)
            if fallback is None:
                result: T = await entry(ctx)
                return result
            try:
                result = await entry(ctx)
            except fallback.catching as exc:
                return fallback.replace(exc, backend)  # type: ignore[return-value]  # D
            return result

        _wrapped[wrapper] = (Pipeline(self.policies, self.backend), fn)
        return wrapper


def default_backend_name(fn: object) -> str:
    """``module.qualname`` of a function, or of a callable object's class.

    Qualified by module, so two ``fetch`` functions in different modules do not share a
    breaker; name the backend (``compose(..., backend="rag")``) to share one on purpose.
    """
    named = fn if hasattr(fn, "__qualname__") else type(fn)
    module = getattr(named, "__module__", None)
    qualname = getattr(named, "__qualname__", repr(named))
    return f"{module}.{qualname}" if module else qualname


def _chain(policies: tuple[Policy, ...], last: Call[Any]) -> Call[Any]:
    """``policies[0]`` around ``policies[1]`` ... around ``last``, as one step."""
    step = last
    for policy in reversed(policies):
        step = functools.partial(policy.execute, step)
    return step


if TYPE_CHECKING:
    from resilience.fallback import SafeDefault

    D = TypeVar("D")

    class DefaultingPipeline(Pipeline, Generic[D]):
        """For type checkers: a pipeline whose outermost safe default widens results."""

        def __call__(  # type: ignore[override]  # the default widens the result type
            self, fn: Callable[P, Awaitable[T]]
        ) -> Callable[P, Awaitable[T | D]]:
            """Decorate ``fn``: its result, or the default."""


@overload
def compose(
    first: SafeDefault[D], /, *policies: Policy, backend: str | None = None
) -> DefaultingPipeline[D]: ...
@overload
def compose(*policies: Policy, backend: str | None = None) -> Pipeline: ...
def compose(*policies: Policy, backend: str | None = None) -> Pipeline:
    """Fold policies into one pipeline, outermost first, as stacked decorators would."""
    return Pipeline(policies, backend)
