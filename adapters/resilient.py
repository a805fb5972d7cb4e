"""``resilient(service, backend=...)``: a service whose async methods run through policies."""

from __future__ import annotations

import difflib
import inspect
from typing import TYPE_CHECKING, NoReturn, TypeVar, cast

from adapters._pipelines import resolve_pipeline, without_retry
from resilience.errors import ConfigurationError
from resilience.pipeline import Pipeline, Policy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

S = TypeVar("S")

_MISSING = object()


def resilient(
    service: S,
    *,
    backend: str,
    policy: Policy | None = None,
    methods: Mapping[str, Policy] | None = None,
    no_retry: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> S:
    """Wrap ``service`` so each of its async methods runs through ``backend``'s policies.

    Callers keep their code: the same methods, arguments, signatures and return values,
    and the result is typed as the service's own type. Everything that is not an async
    method (sync methods, properties, data) is the service's own attribute.

    * ``policy``: the policies of every async method (default: ``policy_for(backend)``);
    * ``methods``: per-method policies replacing that default, e.g. a tighter timeout;
    * ``no_retry``: methods that must reach the backend at most once (non-idempotent
      writes): their policies minus any retry, so a timeout is not retried either;
    * ``exclude``: methods called directly, without any policy.

    Every name in ``methods``, ``no_retry`` and ``exclude`` must be an async method of
    ``service``; otherwise :class:`ConfigurationError` names each offender, here rather
    than on the first call.
    """
    methods = dict(methods or {})
    no_retry = _names("no_retry", no_retry)
    exclude = _names("exclude", exclude)
    for name, method_policy in methods.items():
        if not isinstance(method_policy, Policy):
            raise TypeError(f"methods[{name!r}] must be a resilience Policy, got {method_policy!r}")
    problems: dict[str, str] = {}
    for option, names in (("methods", methods), ("no_retry", no_retry), ("exclude", exclude)):
        for name in names:
            why = _not_an_async_method(service, name)
            if why is not None:
                problems[f"{option}[{name!r}]"] = why
            elif option != "exclude" and name in exclude:
                problems[f"{option}[{name!r}]"] = "the method is also excluded from policies"
    if problems:
        raise ConfigurationError(problems)
    default = resolve_pipeline(backend, policy)
    per_method: dict[str, Pipeline | None] = dict.fromkeys(exclude)
    for name in {*methods, *no_retry}:
        pipeline = resolve_pipeline(backend, methods[name]) if name in methods else default
        per_method[name] = without_retry(pipeline) if name in no_retry else pipeline
    # The proxy stands in for S at runtime (see _ResilientProxy); no other spelling types it.
    return cast("S", _ResilientProxy(service, backend, default, per_method))


class _ResilientProxy:
    """Forwards every attribute to the service, async methods wrapped in their pipeline.

    A proxy rather than a dynamic subclass of the service's class, because:

    * the service keeps running its own methods on itself, so an async method that calls
      another one (``self.fetch()`` inside ``retrieve``) does not go through the policies
      a second time; a subclass would nest retries inside retries;
    * nothing is copied or re-initialised, so ``__slots__`` classes, objects whose
      ``__init__`` opens connections and state changed later all keep working;
    * ``isinstance(wrapped, type(service))`` still holds through a ``__class__``
      property, the technique ``unittest.mock`` uses; ``type(wrapped)`` is the proxy.

    Special methods (``len()``, operators, ``async with``) are looked up on the type and
    are not forwarded: enter the service's context first, then wrap the service.
    """

    __slots__ = ("_backend", "_cache", "_default", "_per_method", "_service")

    _service: object
    _backend: str
    _default: Pipeline
    _per_method: dict[str, Pipeline | None]
    _cache: dict[str, tuple[object, Callable[..., object]]]

    def __init__(
        self,
        service: object,
        backend: str,
        default: Pipeline,
        per_method: dict[str, Pipeline | None],
    ) -> None:
        object.__setattr__(self, "_service", service)
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "_default", default)
        object.__setattr__(self, "_per_method", per_method)
        object.__setattr__(self, "_cache", {})

    @property  # type: ignore[misc] # read-only on purpose: isinstance() sees the service
    def __class__(self) -> type:
        return type(self._service)

    def __getattr__(self, name: str) -> object:
        if name in _ResilientProxy.__slots__:  # not initialised (copy, pickle): no recursion
            raise AttributeError(name)
        value = getattr(self._service, name)
        if _is_special(name) or not inspect.iscoroutinefunction(value):
            return value
        cached = self._cache.get(name)
        if cached is not None and cached[0] == value:  # bound methods compare by function and self
            return cached[1]
        pipeline = self._per_method.get(name, self._default)
        wrapper: Callable[..., object] = value if pipeline is None else pipeline(value)
        self._cache[name] = (value, wrapper)
        return wrapper

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._service, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._service, name)

    def __dir__(self) -> list[str]:
        return dir(self._service)

    def __repr__(self) -> str:
        return f"resilient({self._service!r}, backend={self._backend!r})"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError(
            "a resilient() service cannot be copied or pickled: copy the service, then wrap it"
        )


def _names(option: str, names: Iterable[str]) -> frozenset[str]:
    if isinstance(names, str):
        raise TypeError(f"{option} takes a collection of method names, not the string {names!r}")
    return frozenset(names)


def _is_special(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _not_an_async_method(service: object, name: str) -> str | None:
    """Why ``name`` cannot take policies on ``service``, or ``None`` when it can."""
    kind = type(service).__name__
    if _is_special(name):
        return f"special method {name!r} is not wrapped"
    if isinstance(inspect.getattr_static(service, name, None), property):
        return f"{kind}.{name} is a property, not an async method"
    value = getattr(service, name, _MISSING)
    if value is _MISSING:
        close = difflib.get_close_matches(name, dir(service), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{kind} has no method {name!r}{hint}"
    if not inspect.iscoroutinefunction(value):
        return f"{kind}.{name} is not an async method (it is a {type(value).__name__})"
    return None
