"""The example workflow's retrieval tier on simulated backends, shared by the scenarios.

Three backends answer one request side by side, as in ``examples/parallel_workflow.py``:
RAG retrieval, the tool executor and memory search, each with a lognormal latency.
Latencies are drawn per request up front from one seeded ``random.Random``, so every
variant of a scenario (sequential or parallel, the original design or the toolkit) sees
exactly the same backend behaviour for the same request.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable, Sequence

T = TypeVar("T")


@dataclass(frozen=True)
class BackendSpec:
    """One backend of the retrieval tier: the state key it fills and its latency."""

    key: str
    backend: str
    median_s: float
    sigma: float
    default: Callable[[], Any]

    def draw(self, rng: random.Random) -> float:
        """One latency in seconds."""
        return rng.lognormvariate(math.log(self.median_s), self.sigma)


#: The retrieval backends of ``examples/parallel_workflow.py``, with its latency medians and
#: spread (lognormal, sigma 0.4).
RETRIEVAL: tuple[BackendSpec, ...] = (
    BackendSpec("documents", "rag", 0.080, 0.4, list),
    BackendSpec("tool_results", "tools", 0.120, 0.4, list),
    BackendSpec("memories", "memory", 0.040, 0.4, list),
)


def draw_latencies(
    rng: random.Random, requests: int, specs: Sequence[BackendSpec] = RETRIEVAL
) -> list[tuple[float, ...]]:
    """One latency per backend per request, in ``specs`` order."""
    return [tuple(spec.draw(rng) for spec in specs) for _ in range(requests)]


def poisson_arrivals(rng: random.Random, rate_per_s: float, duration_s: float) -> list[float]:
    """Request start times of an open-loop Poisson workload over ``[0, duration_s)``."""
    arrivals = []
    at = rng.expovariate(rate_per_s)
    while at < duration_s:
        arrivals.append(at)
        at += rng.expovariate(rate_per_s)
    return arrivals


@dataclass
class BackendCall:
    """One call a backend received: when, whether it was down, how it ended."""

    started: float
    down: bool
    ended: float = math.nan
    outcome: str = "running"


@dataclass
class SimulatedBackend:
    """A backend whose latency for request ``state["request"]`` is pre-drawn.

    While simulated time is inside ``outage`` (``[start, end)``) a call hangs until it is
    cancelled, as ``resilience.testing.FlakyBackend`` does while ``down``; a call that
    started before the end keeps hanging after it (a connection stuck on a dead host).
    """

    spec: BackendSpec
    index: int
    latencies: Sequence[tuple[float, ...]]
    outage: tuple[float, float] | None = None
    calls: list[BackendCall] = field(default_factory=list)

    def is_down(self, at: float) -> bool:
        """Whether a call starting at ``at`` hangs."""
        return self.outage is not None and self.outage[0] <= at < self.outage[1]

    async def __call__(self, state: dict[str, Any]) -> tuple[str, int]:
        """Answer one request after its drawn latency (or hang while down)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        call = BackendCall(now, self.is_down(now))
        self.calls.append(call)
        try:
            if call.down:
                await asyncio.Event().wait()
            await asyncio.sleep(self.latencies[state["request"]][self.index])
        except asyncio.CancelledError:
            call.outcome = "cancelled"
            raise
        finally:
            call.ended = loop.time()
        call.outcome = "ok"
        return self.spec.backend, state["request"]


def backends(
    latencies: Sequence[tuple[float, ...]],
    outages: dict[str, tuple[float, float]] | None = None,
    specs: Sequence[BackendSpec] = RETRIEVAL,
) -> list[SimulatedBackend]:
    """One simulated backend per spec; ``outages`` maps a backend name to its down window."""
    outages = outages or {}
    return [
        SimulatedBackend(spec, index, latencies, outages.get(spec.backend))
        for index, spec in enumerate(specs)
    ]


async def open_loop(arrivals: Sequence[float], handle: Callable[[int], Awaitable[T]]) -> list[T]:
    """Start request ``i`` at ``arrivals[i]`` whatever the others are doing; await them all."""
    loop = asyncio.get_running_loop()
    started: list[asyncio.Task[T]] = []
    for index, at in enumerate(arrivals):
        wait = at - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        started.append(loop.create_task(handle(index)))
    return list(await asyncio.gather(*started))
