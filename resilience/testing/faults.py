"""Fault injection: backends that succeed, fail, stall or hang on a script or at random."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What one call to a fake backend does: wait ``after_s``, then return or raise."""

    after_s: float = 0.0
    value: T | None = None
    error: BaseException | None = None
    hang: bool = False


def ok(value: T = None, *, after_s: float = 0.0) -> Outcome[T]:  # type: ignore[assignment]
    """Return ``value`` after ``after_s`` simulated seconds."""
    return Outcome(after_s=after_s, value=value)


def fail(error: BaseException, *, after_s: float = 0.0) -> Outcome[Any]:
    """Raise ``error`` after ``after_s`` simulated seconds."""
    return Outcome(after_s=after_s, error=error)


def hang() -> Outcome[Any]:
    """Never return (until cancelled)."""
    return Outcome(hang=True)


@dataclass
class ScriptedBackend(Generic[T]):
    """An async callable that plays ``script`` one outcome per call.

    Past the end of the script it repeats ``then`` (default: the last outcome). It records
    each call's start time and arguments, and how many calls are running now.
    """

    script: list[Outcome[T]]
    then: Outcome[T] | None = None
    calls: list[tuple[float, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    running: int = 0
    cancelled: int = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> T:  # noqa: ANN401 - any signature
        """Play the next outcome of the script."""
        loop = asyncio.get_running_loop()
        index = len(self.calls)
        self.calls.append((loop.time(), args, kwargs))
        if index < len(self.script):
            outcome = self.script[index]
        elif self.then is not None:
            outcome = self.then
        else:
            outcome = self.script[-1]
        self.running += 1
        try:
            if outcome.hang:
                await asyncio.Event().wait()
            if outcome.after_s:
                await asyncio.sleep(outcome.after_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
        if outcome.error is not None:
            raise outcome.error
        return outcome.value  # type: ignore[return-value]

    @property
    def call_count(self) -> int:
        """Calls so far."""
        return len(self.calls)

    @property
    def call_times(self) -> list[float]:
        """Loop time at the start of each call."""
        return [at for at, _, _ in self.calls]


@dataclass
class FlakyBackend(Generic[T]):
    """A backend with random latency and a failure rate, reproducible from ``seed``.

    ``latency`` draws one latency in seconds from the given RNG (default: lognormal around
    50 ms). While ``down`` is true every call hangs until cancelled (an outage).
    """

    result: Callable[..., T]
    failure_rate: float = 0.0
    latency: Callable[[random.Random], float] = lambda rng: rng.lognormvariate(-3.0, 0.5)
    seed: int = 0
    down: bool = False
    error: Callable[[], BaseException] = lambda: ConnectionError("injected failure")
    calls: int = 0
    failures: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - simulation, not security

    async def __call__(self, *args: Any, **kwargs: Any) -> T:  # noqa: ANN401 - any signature
        """One call: random latency, then a result or an injected failure."""
        self.calls += 1
        if self.down:
            await asyncio.Event().wait()
        await asyncio.sleep(self.latency(self.rng))
        if self.rng.random() < self.failure_rate:
            self.failures += 1
            raise self.error()
        return self.result(*args, **kwargs)


def outcomes(*items: Outcome[T] | Iterable[Outcome[T]]) -> list[Outcome[T]]:
    """Flatten outcomes and lists of outcomes into one script."""
    script: list[Outcome[T]] = []
    for item in items:
        if isinstance(item, Outcome):
            script.append(item)
        else:
            script.extend(item)
    return script
