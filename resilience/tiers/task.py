"""One backend call of a tier: the state key it writes and what stands in when it cannot."""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any, TypeAlias

from resilience._checks import is_async_callable
from resilience.fallback import SafeDefault
from resilience.pipeline import Pipeline, Policy
from resilience.settings import policy_for

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from resilience.settings import ResilienceSettings

#: A task's call: receives the state, returns an awaitable (or, run in a thread, a value).
TaskCall: TypeAlias = "Callable[[Any], Awaitable[Any]] | Callable[[Any], Any]"
#: When a task runs: a state key (on when missing) or a predicate of the state.
EnableCondition: TypeAlias = "str | Callable[[Any], object]"

#: The state key a tier writes its metadata under; no task may claim it.
METADATA: str = "metadata"


def is_lambda(fn: object) -> bool:
    """A ``lambda``: one expression, in practice an adapter from the state to an async call."""
    return inspect.isfunction(fn) and fn.__name__ == "<lambda>"


async def _in_thread(call: Callable[[Any], Any], state: Any) -> Any:  # noqa: ANN401 - any state
    result = await asyncio.to_thread(call, state)
    if inspect.isawaitable(result):  # it only started async work: finish that on the loop
        result = await result
    return result


async def _on_loop(call: Callable[[Any], Any], state: Any) -> Any:  # noqa: ANN401 - any state
    result = call(state)
    if inspect.isawaitable(result):
        result = await result
    return result


class Task:
    """A call whose result a tier writes to ``state[key]``, or a fresh default in its place.

    ``call`` receives the state and returns an awaitable, or a value. An ``async``
    callable is awaited on the loop. A ``lambda`` is taken as an adapter to an async call
    (``lambda s: rag.search(s["query"])``): it is called on the loop and what it returns
    is awaited if it is awaitable. Any other callable (a plain ``def``, a method, a
    partial, an object) runs in a worker thread, so blocking code cannot stall the loop.
    ``blocking=True`` sends any callable to a thread, ``blocking=False`` keeps it on the
    loop. ``default`` is a value (deep-copied each time) or a zero-argument
    factory such as ``list``, called each time. ``enabled`` is a state key (the task runs
    unless the key holds a falsy value; a missing key means on) or a predicate of the
    state. The call runs through ``policy`` if given, else through
    ``policy_for(backend)`` as the environment configures it; ``backend`` defaults to
    ``key``. Pass ``policy=compose()`` for no policies at all. ``priority`` orders the
    call in its backend's bulkhead queue (unset: the caller's priority).
    """

    __slots__ = (
        "_fallback",
        "_fixed",
        "backend",
        "blocking",
        "call",
        "default",
        "direct",
        "enabled",
        "key",
        "policy",
        "priority",
    )

    def __init__(
        self,
        key: str,
        call: TaskCall,
        *,
        default: object = None,
        enabled: EnableCondition | None = None,
        backend: str | None = None,
        policy: Policy | None = None,
        priority: int | None = None,
        blocking: bool | None = None,
    ) -> None:
        _check_task(key, call, enabled, backend, policy, priority, blocking)
        self.key = key
        self.call = call
        self.default = default
        self.enabled = enabled
        self.backend = backend or key
        # Bound once, as a decorator would: breakers and bulkheads are shared by backend.
        self.policy = policy.bind(self.backend) if policy is not None else None
        self.priority = priority
        is_async = is_async_callable(call)
        if blocking is None:
            blocking = not is_async and not is_lambda(call)
        #: Whether the call runs in a worker thread.
        self.blocking = blocking
        #: Whether the call is awaited as it is (an ``async`` callable kept on the loop).
        self.direct = is_async and not blocking
        self._fallback = SafeDefault(default, (Exception,))
        # An explicit policy is resolved once; an empty pipeline means a direct call.
        self._fixed = self.policy is not None
        if isinstance(self.policy, Pipeline) and not self.policy.policies:
            self.policy = None

    def __repr__(self) -> str:
        return f"Task({self.key!r}, {self.call!r}, backend={self.backend!r})"

    def is_enabled(self, state: Mapping[str, Any]) -> bool:
        """Whether the task runs for ``state``."""
        condition = self.enabled
        if condition is None:
            return True
        if isinstance(condition, str):
            return bool(state.get(condition, True))
        return bool(condition(state))

    def invoke(self, state: Any) -> Awaitable[Any]:  # noqa: ANN401 - the caller's state type
        """Start the call for ``state`` (in a worker thread if it blocks)."""
        if self.direct:
            return self.call(state)
        if self.blocking:
            return _in_thread(self.call, state)
        return _on_loop(self.call, state)

    def make_default(self, failure: BaseException | None = None) -> Any:  # noqa: ANN401
        """A fresh default for the key (the failure, if any, is chained to a factory's error)."""
        return self._fallback.make_default(self.backend, failure)

    def resolve_policy(self, settings: ResilienceSettings | None) -> Policy | None:
        """The policy the call runs through now; ``None`` when there is nothing to apply."""
        if self._fixed:
            return self.policy
        policy = policy_for(self.backend, settings=settings)
        return None if not policy.policies else policy


def _check_task(  # noqa: PLR0917 - the options of Task.__init__, checked in one place
    key: object,
    call: object,
    enabled: object,
    backend: object,
    policy: object,
    priority: object,
    blocking: object,
) -> None:
    if not isinstance(key, str) or not key:
        raise TypeError(f"a task's key must be a non-empty str, got {key!r}")
    if key == METADATA:
        raise ValueError(f"task key {key!r} is reserved for the tier's metadata")
    if not callable(call):
        raise TypeError(f"task {key!r}: call must be callable with the state, got {call!r}")
    if enabled is not None and not isinstance(enabled, str) and not callable(enabled):
        raise TypeError(
            f"task {key!r}: enabled must be a state key or a predicate, got {enabled!r}"
        )
    if backend is not None and (not isinstance(backend, str) or not backend):
        raise TypeError(f"task {key!r}: backend must be a non-empty str, got {backend!r}")
    if policy is not None and not isinstance(policy, Policy):
        raise TypeError(f"task {key!r}: policy must be a Policy, got {policy!r}")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise TypeError(f"task {key!r}: priority must be an int, got {priority!r}")
    if blocking is not None and not isinstance(blocking, bool):
        raise TypeError(f"task {key!r}: blocking must be a bool, got {blocking!r}")
