"""Per-call cost of the resilience policies on the success path, against the libraries.

Run from the repository root::

    .venv/bin/python benchmarks/overhead.py [--rounds R] [--batch N] [--quick] [--json PATH]

What is measured
    Every variant wraps a trivial ``async def`` that returns ``1`` without suspending. The
    variants are: the bare call; ``asyncio.timeout(5)`` around it; tenacity's ``@retry``
    alone (its ``AsyncRetrying`` path); stamina's retry alone; aiobreaker alone; the stack
    users assemble by hand today (try/except returning a default, around an aiobreaker
    breaker, around tenacity ``@retry``, around ``asyncio.timeout(5)``); the toolkit's
    ``safe_default(None)``, ``retry()``, ``circuit_breaker()``, ``timeout(5)`` stack, and
    the same stack with ``adaptive_deadline()`` in place of ``timeout(5)``. The rejection
    path of an open breaker through to the default value is measured for the toolkit and
    for aiobreaker (its ``CircuitBreakerError`` caught by a try/except returning ``None``).

How
    One process, the standard asyncio event loop, real time. A sample is a batch of
    ``--batch`` awaited calls timed with ``time.perf_counter_ns`` inside one coroutine,
    divided by the batch size. Each round takes one sample of every variant, round-robin,
    starting at a different variant each round, so machine noise lands on all of them
    alike; a few warm-up rounds are discarded (they also fill the adaptive deadline's
    latency window to its steady state). Between batches the loop runs once, so its
    housekeeping (dropping cancelled timer handles) happens as it would in a service.
    The garbage collector stays on: allocation is part of what a policy costs. The table
    reports the median over rounds and the interquartile range as a share of it.

Observers and logging: what is fair
    The toolkit reports events to an observer hub whose default observer logs with
    structlog; on the success path nothing is emitted, on the rejection path two events
    are (breaker rejected, fell back). aiobreaker emits nothing when it rejects. Rendering
    and writing a log line costs whatever the user's logging pipeline costs and would
    swamp both libraries, so structlog is configured for both rows alike with a filtering
    bound logger that drops everything below ``CRITICAL`` and with
    ``cache_logger_on_first_use=True`` (the production setting). The headline rejection
    row keeps the default observer, which is what users get: it pays for building the
    event objects, dispatching them and structlog's level check. A second row removes the
    default observer (``resilience.events.remove_observer(resilience.events.log_event)``)
    and measures the rejection mechanism alone; it is informational, the target is
    judged on the headline row.

Ratios
    Every row is divided by the bare call and by the hand-assembled stack. The targets
    divide medians of whole per-call costs; the "net" column divides the costs minus
    the bare call, that is the overhead each wrapper adds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiobreaker
import stamina
import structlog
import tenacity
from _stats import interleaved, observers

from resilience import adaptive_deadline, circuit_breaker, retry, safe_default, timeout

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

DEFAULT_ROUNDS = 150
DEFAULT_BATCH = 2000
DEFAULT_WARMUP = 3
QUICK_ROUNDS = 3
QUICK_BATCH = 20
QUICK_WARMUP = 1

BARE = "bare"
HAND = "hand_assembled"
TENACITY = "tenacity_retry"
TOOLKIT = "toolkit_full"
TOOLKIT_ADAPTIVE = "toolkit_full_adaptive"
TOOLKIT_REJECT = "toolkit_rejection"
TOOLKIT_REJECT_QUIET = "toolkit_rejection_no_observers"
AIOBREAKER_REJECT = "aiobreaker_rejection"

_build_ids = itertools.count(1)


@dataclass
class Variant:
    """One way of calling the trivial backend; ``expected`` is what each call returns."""

    key: str
    label: str
    call: Callable[[], Awaitable[object]]
    expected: object = 1
    observers: bool = True
    backend_calls: list[int] | None = None


@dataclass(frozen=True)
class Target:
    """A ratio printed under the table; with a ``limit``, a target it must stay under."""

    label: str
    numerator: str
    denominator: str
    limit: float | None = None


TARGETS = (
    Target("toolkit full stack / tenacity @retry alone", TOOLKIT, TENACITY, 0.25),
    Target("toolkit full stack / hand-assembled stack", TOOLKIT, HAND, 0.2),
    Target(
        "toolkit open-breaker rejection / aiobreaker rejection",
        TOOLKIT_REJECT,
        AIOBREAKER_REJECT,
        1.0,
    ),
    Target("toolkit adaptive stack / tenacity @retry alone", TOOLKIT_ADAPTIVE, TENACITY),
    Target("toolkit adaptive stack / hand-assembled stack", TOOLKIT_ADAPTIVE, HAND),
    Target(
        "toolkit rejection, no observers / aiobreaker rejection",
        TOOLKIT_REJECT_QUIET,
        AIOBREAKER_REJECT,
    ),
)


def _backend(name: str) -> Callable[[], Awaitable[int]]:
    async def backend() -> int:
        return 1

    backend.__name__ = backend.__qualname__ = name
    return backend


def _failing_backend(name: str, calls: list[int]) -> Callable[[], Awaitable[int]]:
    async def backend() -> int:
        calls.append(1)
        raise ConnectionError(name)

    backend.__name__ = backend.__qualname__ = name
    return backend


def _tenacity_retry() -> Callable[[Callable[[], Awaitable[int]]], Callable[[], Awaitable[int]]]:
    return tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_random_exponential(multiplier=0.1, max=10),
    )


def _library_variants(tag: str) -> list[Variant]:
    bare = _backend(f"bare_{tag}")

    async def asyncio_timeout_alone() -> int:
        async with asyncio.timeout(5):
            return await bare()

    hand_breaker = aiobreaker.CircuitBreaker(fail_max=5)

    @hand_breaker
    @_tenacity_retry()
    async def hand_inner() -> int:
        async with asyncio.timeout(5):
            return await bare()

    async def hand_assembled() -> int | None:
        try:
            return await hand_inner()
        except Exception:  # noqa: BLE001 - the default replaces any failure, as users write it
            return None

    return [
        Variant(BARE, "bare `await f()`", bare),
        Variant("asyncio_timeout", "`asyncio.timeout(5)` alone", asyncio_timeout_alone),
        Variant(
            TENACITY, "tenacity `@retry` alone", _tenacity_retry()(_backend(f"tenacity_{tag}"))
        ),
        Variant(
            "stamina_retry",
            "stamina `retry` alone",
            stamina.retry(on=Exception, attempts=3)(_backend(f"stamina_{tag}")),
        ),
        Variant(
            "aiobreaker",
            "aiobreaker `CircuitBreaker` alone",
            aiobreaker.CircuitBreaker(fail_max=5)(_backend(f"aiobreaker_{tag}")),
        ),
        Variant(
            HAND,
            "hand-assembled: try/except > aiobreaker > tenacity > asyncio.timeout",
            hand_assembled,
        ),
    ]


def _toolkit_variants(tag: str) -> list[Variant]:
    full = safe_default(None)(retry()(circuit_breaker()(timeout(5)(_backend(f"full_{tag}")))))
    adaptive = safe_default(None)(
        retry()(circuit_breaker()(adaptive_deadline()(_backend(f"adaptive_{tag}"))))
    )
    return [
        Variant(TOOLKIT, "toolkit: safe_default > retry > circuit_breaker > timeout", full),
        Variant(
            TOOLKIT_ADAPTIVE,
            "toolkit: safe_default > retry > circuit_breaker > adaptive_deadline",
            adaptive,
        ),
    ]


def _rejection_variants(tag: str) -> list[Variant]:
    toolkit_calls: list[int] = []
    toolkit = safe_default(None)(
        circuit_breaker(failure_threshold=1, reset_timeout_s=3600)(
            _failing_backend(f"rejection_{tag}", toolkit_calls)
        )
    )
    aio_calls: list[int] = []
    aio_breaker = aiobreaker.CircuitBreaker(fail_max=1, timeout_duration=timedelta(hours=1))
    aio_guarded = aio_breaker(_failing_backend(f"aiobreaker_rejection_{tag}", aio_calls))

    async def aiobreaker_rejection() -> int | None:
        try:
            return await aio_guarded()
        except Exception:  # noqa: BLE001 - the default replaces any failure, as users write it
            return None

    return [
        Variant(
            TOOLKIT_REJECT,
            "rejection, toolkit: open circuit_breaker > safe_default (default observer)",
            toolkit,
            expected=None,
            backend_calls=toolkit_calls,
        ),
        Variant(
            TOOLKIT_REJECT_QUIET,
            "rejection, toolkit: open circuit_breaker > safe_default (no observers)",
            toolkit,
            expected=None,
            observers=False,
            backend_calls=toolkit_calls,
        ),
        Variant(
            AIOBREAKER_REJECT,
            "rejection, aiobreaker: open breaker > try/except",
            aiobreaker_rejection,
            expected=None,
            backend_calls=aio_calls,
        ),
    ]


def build_variants() -> list[Variant]:
    """Fresh variants; backends are named per build so breakers and deadlines start anew."""
    tag = str(next(_build_ids))
    return _library_variants(tag) + _toolkit_variants(tag) + _rejection_variants(tag)


def configure_logging() -> None:
    """Drop every log line below CRITICAL before rendering, the same for all variants."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=True,
    )


async def _prepare(variants: list[Variant]) -> None:
    """Trip the breakers of the rejection rows once, then check every variant's answer."""
    for variant in variants:
        if variant.backend_calls is not None and not variant.backend_calls:
            await variant.call()
    for variant in variants:
        with observers(enabled=variant.observers):
            result = await variant.call()
        if result != variant.expected:
            raise RuntimeError(f"{variant.key} returned {result!r}, not {variant.expected!r}")


async def measure(
    variants: list[Variant], *, rounds: int, batch: int, warmup: int
) -> dict[str, list[float]]:
    """Per-call ns of every variant, one sample per round, variants interleaved."""
    await _prepare(variants)
    samples = await interleaved(variants, rounds=rounds, batch=batch, warmup=warmup)
    for variant in variants:
        if variant.backend_calls is not None and len(variant.backend_calls) != 1:
            raise RuntimeError(f"{variant.key}: the open breaker let a call through")
    return samples


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def summarize(variants: list[Variant], samples: dict[str, list[float]]) -> dict[str, Any]:
    """Medians, spreads, ratios and target verdicts, as written to ``--json``."""
    medians = {key: _quartiles(values)[1] for key, values in samples.items()}
    bare, hand = medians[BARE], medians[HAND]
    rows = []
    for variant in variants:
        q1, median, q3 = _quartiles(samples[variant.key])
        rows.append(
            {
                "key": variant.key,
                "label": variant.label,
                "median_ns": median,
                "p25_ns": q1,
                "p75_ns": q3,
                "iqr_pct": 100 * (q3 - q1) / median,
                "x_bare": median / bare,
                "x_hand_assembled": median / hand,
            }
        )
    targets = []
    for target in TARGETS:
        num, den = medians[target.numerator], medians[target.denominator]
        ratio = num / den
        net = (num - bare) / (den - bare) if den > bare else None
        targets.append(
            {
                "label": target.label,
                "numerator": target.numerator,
                "denominator": target.denominator,
                "ratio": ratio,
                "net_ratio": net,
                "limit": target.limit,
                "passed": None if target.limit is None else ratio <= target.limit,
            }
        )
    return {"rows": rows, "targets": targets}


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}x"


def _verdict(passed: bool | None) -> str:
    if passed is None:
        return "info"
    return "PASS" if passed else "MISS"


def render(summary: dict[str, Any], header: str) -> str:
    """The figures as markdown tables."""
    lines = [header, ""]
    lines += [
        "| variant | ns/call (median) | IQR | x bare | x hand-assembled |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in summary["rows"]:
        lines.append(
            f"| {row['label']} | {row['median_ns']:,.0f} | {row['iqr_pct']:.1f}% "
            f"| {row['x_bare']:.2f}x | {row['x_hand_assembled']:.3f}x |"
        )
    lines += [
        "",
        "| ratio | measured | net of bare call | target | verdict |",
        "|---|---:|---:|---:|:---:|",
    ]
    for target in summary["targets"]:
        limit = "-" if target["limit"] is None else f"<= {target['limit']:.2f}x"
        lines.append(
            f"| {target['label']} | {target['ratio']:.3f}x | {_ratio(target['net_ratio'])} "
            f"| {limit} | {_verdict(target['passed'])} |"
        )
    return "\n".join(lines)


def _header(rounds: int, batch: int, warmup: int, loop: asyncio.AbstractEventLoop) -> str:
    libraries = ", ".join(
        f"{name} {version(name)}" for name in ("tenacity", "stamina", "aiobreaker", "structlog")
    )
    return (
        f"Median cost per call: {rounds} rounds x {batch} calls "
        f"(+{warmup} warm-up rounds), {type(loop).__name__}, "
        f"Python {platform.python_version()} on {platform.machine()}; {libraries}"
    )


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Per-call cost of the resilience policies on the success path."
    )
    parser.add_argument("--rounds", type=int, help=f"measured rounds (default {DEFAULT_ROUNDS})")
    parser.add_argument(
        "--batch", type=int, help=f"calls per timed batch (default {DEFAULT_BATCH})"
    )
    parser.add_argument("--warmup", type=int, help=f"discarded rounds (default {DEFAULT_WARMUP})")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)
    defaults = (
        {"rounds": QUICK_ROUNDS, "batch": QUICK_BATCH, "warmup": QUICK_WARMUP}
        if args.quick
        else {"rounds": DEFAULT_ROUNDS, "batch": DEFAULT_BATCH, "warmup": DEFAULT_WARMUP}
    )
    for option, value in defaults.items():
        if getattr(args, option) is None:
            setattr(args, option, value)
    for option in ("rounds", "batch"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


async def _run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    loop = asyncio.get_running_loop()
    if loop.get_debug():
        print("warning: asyncio debug mode is on; figures are inflated", file=sys.stderr)
    variants = build_variants()
    samples = await measure(variants, rounds=args.rounds, batch=args.batch, warmup=args.warmup)
    return summarize(variants, samples), _header(args.rounds, args.batch, args.warmup, loop)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the tables, and write ``--json`` if asked."""
    args = _parse(argv)
    configure_logging()
    started = time.perf_counter()
    summary, header = asyncio.run(_run(args))
    summary["settings"] = {"rounds": args.rounds, "batch": args.batch, "warmup": args.warmup}
    summary["wall_s"] = time.perf_counter() - started
    summary["environment"] = header
    print(render(summary, header))
    print(f"\n(took {summary['wall_s']:.1f} s)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
