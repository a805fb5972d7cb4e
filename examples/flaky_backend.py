"""The five policies against a flaky, sometimes-down backend, on simulated time.

Run: ``.venv/bin/python examples/flaky_backend.py [--requests N]``. A retriever fails 20% of
calls, and goes down (hangs) for 40 simulated seconds mid-run; the decorated call still
answers every request, with documents or the safe default, and the report counts what
each policy absorbed.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter

from resilience import (
    adaptive_deadline,
    circuit_breaker,
    events,
    retry,
    safe_default,
)
from resilience.testing import EventCapture, FlakyBackend, run_simulated


def make_retriever(backend: FlakyBackend[list[str]]):  # noqa: ANN201 - the decorated type
    """Decorate an existing async call: this is all a user adds."""

    @safe_default(list)
    @retry(attempts=3, initial_delay_s=0.05, max_delay_s=1.0)
    @circuit_breaker(name="retriever", failure_threshold=5, reset_timeout_s=10)
    @adaptive_deadline(initial_s=2.0, min_s=0.05, max_s=5.0, min_samples=20)
    async def retrieve(query: str) -> list[str]:
        return await backend(query)

    return retrieve


async def serve(requests: int) -> dict[str, object]:
    """Serve ``requests`` queries, one every 100 ms, with an outage from t=20 s to t=60 s."""
    loop = asyncio.get_running_loop()
    backend: FlakyBackend[list[str]] = FlakyBackend(
        result=lambda query: [f"doc about {query}"], failure_rate=0.2, seed=42
    )
    retrieve = make_retriever(backend)
    answered = fell_back = 0
    latencies: list[float] = []
    with EventCapture() as captured:
        for i in range(requests):
            backend.down = 20.0 <= loop.time() < 60.0
            started = loop.time()
            docs = await retrieve(f"question {i}")
            latencies.append(loop.time() - started)
            answered += 1
            fell_back += docs == []
            await asyncio.sleep(0.1)
    latencies.sort()
    counts = Counter(captured.names())
    return {
        "requests": requests,
        "answered": answered,
        "fell back to default": fell_back,
        "backend calls": backend.calls,
        "injected failures": backend.failures,
        "retries scheduled": counts[events.RETRY_SCHEDULED],
        "attempts timed out": counts[events.TIMED_OUT],
        "calls rejected by the open breaker": counts[events.BREAKER_REJECTED],
        "breaker transitions": [
            f"{e.old}->{e.new}" for e in captured.of(events.BreakerStateChanged)
        ],
        "p50 latency (s)": round(latencies[len(latencies) // 2], 4),
        "p99 latency (s)": round(latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)], 4),
        "simulated seconds": round(loop.time(), 1),
    }


def main() -> None:
    """Parse arguments, run on simulated time, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    events.remove_observer(events.log_event)  # the report below says it all
    report = run_simulated(serve(args.requests))
    width = max(map(len, report))
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
