"""The tier runner's own overhead, against bare ``asyncio.gather`` of the same three calls.

Run from the repository root::

    .venv/bin/python benchmarks/tier_overhead.py [--rounds R] [--batch N] [--warmup W]

What is measured
    Three trivial ``async def`` backends that take the state and return at once. The
    baseline awaits ``asyncio.gather(rag(state), tools(state), memory(state))``. The tier
    awaits ``tier.run(state)`` for a ``Tier`` of the same three calls with no policies
    (``policy=compose()``), so what is left is the runner itself: its 5 s timeout, the
    enable checks, per-task isolation and timing, defaults, the metadata entry written
    into the state, and its start and finish events.

How
    One process, the standard asyncio event loop, real time. A sample is a batch of
    ``--batch`` awaited calls timed with ``time.perf_counter_ns`` inside one coroutine,
    divided by the batch size. Each round takes one sample of every variant, starting at
    a different variant each round, so machine noise lands on all of them alike;
    warm-up rounds are discarded. Reported: each variant's median over the rounds, and
    the ratio of the medians. The exit status is 1 when the target is missed.

Observers: what is fair
    The tier reports its start and finish to the observer hub; that is part of the
    runner and stays in every tier row (the event objects are built and dispatched).
    What the observers then do is the observers' cost, not the runner's: the target
    row runs with no observer registered. The default observer logs through structlog;
    as in ``benchmarks/overhead.py``, structlog drops everything below ``CRITICAL``
    before rendering, and a second tier row with the default observer registered shows
    what that costs (informational).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from _stats import interleaved

from resilience import ResilienceSettings, compose
from resilience.tiers import Task, Tier

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

TARGET = 1.5
GATHER = "gather"
TIER = "tier"
TIER_OBSERVED = "tier_default_observer"


async def rag(state: dict[str, Any]) -> list[str]:
    return [state["query"]]


async def tools(state: dict[str, Any]) -> dict[str, str]:
    return {"query": state["query"]}


async def memory(state: dict[str, Any]) -> list[str]:
    return [state["query"]]


def build_tier() -> Tier:
    no_policy = compose()
    return Tier(
        "bench",
        [
            Task("rag_context", rag, default=list, policy=no_policy),
            Task("tool_results", tools, default=dict, policy=no_policy),
            Task("memories", memory, default=list, policy=no_policy),
        ],
        timeout_s=5.0,
        settings=ResilienceSettings(),
    )


@dataclass
class Variant:
    key: str
    label: str
    call: Callable[[], Awaitable[object]]
    observers: bool


async def measure(rounds: int, batch: int, warmup: int) -> dict[str, list[float]]:
    """Per-call nanoseconds of every variant, one sample each per round, interleaved."""
    tier = build_tier()
    bare_state: dict[str, Any] = {"query": "q"}
    tier_state: dict[str, Any] = {"query": "q", "metadata": {}}

    async def bare() -> object:
        return await asyncio.gather(rag(bare_state), tools(bare_state), memory(bare_state))

    async def tiered() -> object:
        return await tier.run(tier_state)

    await tiered()
    if tier_state["metadata"]["bench"]["succeeded"] != 3 or tier_state["memories"] != ["q"]:
        raise RuntimeError(f"the tier did not succeed: {tier_state}")
    variants = [
        Variant(GATHER, "bare asyncio.gather", bare, observers=True),
        Variant(TIER, "Tier.run (runner alone)", tiered, observers=False),
        Variant(TIER_OBSERVED, "Tier.run + default observer", tiered, observers=True),
    ]
    return await interleaved(variants, rounds=rounds, batch=batch, warmup=warmup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=101)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    samples = asyncio.run(measure(args.rounds, args.batch, args.warmup))
    medians = {key: statistics.median(values) for key, values in samples.items()}
    ratio = medians[TIER] / medians[GATHER]
    observed = medians[TIER_OBSERVED] / medians[GATHER]
    verdict = "PASS" if ratio <= TARGET else "MISS"
    print(
        f"Python {sys.version.split()[0]}, {args.rounds} rounds x {args.batch} calls, "
        "a tier of 3 trivial tasks without policies, 5 s timeout, metadata written"
    )
    print(f"bare asyncio.gather          : {medians[GATHER] / 1000:7.2f} us/call (median)")
    print(f"Tier.run, runner alone       : {medians[TIER] / 1000:7.2f} us/call (median)")
    print(f"Tier.run + default observer  : {medians[TIER_OBSERVED] / 1000:7.2f} us/call (median)")
    print(f"ratio runner / gather        : {ratio:7.3f}x  (target <= {TARGET}x: {verdict})")
    print(f"ratio with default observer  : {observed:7.3f}x  (informational)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
