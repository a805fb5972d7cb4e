"""Shared pieces of the benchmark scenarios: percentiles, targets, tables, plots, quiet events.

Percentiles are nearest-rank (the value at rank ``ceil(q * n)`` of the sorted sample), the
same rule the adaptive deadline uses, so a reported p99 is always an observed latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import random
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from resilience import events

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence

#: One seed for every simulated scenario: the figures are the same on every run.
SEED = 20240611


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (``q`` in (0, 1]) of a non-empty sample."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of an empty sample")
    rank = max(math.ceil(q * len(ordered)), 1)
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    """The median of a non-empty sample."""
    return statistics.median(list(values))


def summary(values: Sequence[float], quantiles: Sequence[float] = (0.5, 0.99)) -> dict[str, float]:
    """``{"p50": ..., "p99": ...}`` for the given quantiles (keys drop the ``0.``)."""
    return {quantile_key(q): percentile(values, q) for q in quantiles}


def quantile_key(q: float) -> str:
    """``0.5`` -> ``p50``, ``0.999`` -> ``p99.9``."""
    text = f"{q * 100:.3f}".rstrip("0").rstrip(".")
    return f"p{text}"


@dataclass(frozen=True)
class Target:
    """A figure checked against a limit: ``measured <= limit`` or ``measured >= limit``."""

    scenario: str
    label: str
    measured: float
    limit: float
    at_most: bool = True
    unit: str = "x"
    note: str = ""

    @property
    def passed(self) -> bool:
        """Whether the measured figure is on the right side of the limit."""
        if not math.isfinite(self.measured):
            return False
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit

    @property
    def verdict(self) -> str:
        """``PASS`` or ``MISS``."""
        return "PASS" if self.passed else "MISS"

    def as_dict(self) -> dict[str, Any]:
        """The target as written to ``summary.json``."""
        return {**asdict(self), "passed": self.passed, "verdict": self.verdict}

    def row(self) -> list[str]:
        """The target's line in the targets table."""
        sign = "<=" if self.at_most else ">="
        return [
            self.scenario,
            self.label,
            fmt(self.measured, self.unit),
            f"{sign} {fmt(self.limit, self.unit)}",
            self.verdict,
        ]


def fmt(value: float | None, unit: str = "") -> str:
    """A figure for a table: three significant digits, then the unit."""
    if value is None:
        return "-"
    if isinstance(value, int):
        text = f"{value:,}"
    elif not math.isfinite(value):
        text = str(value)
    elif value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        text = f"{value:.3g}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.3g}"
    if not unit:
        return text
    return f"{text}{unit}" if unit in {"x", "%"} else f"{text} {unit}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> str:
    """A markdown table; ``align`` has one ``l``, ``r`` or ``c`` per column (default: l, then r)."""
    align = align or "l" + "r" * (len(headers) - 1)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(marks[a] for a in align) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(targets: Iterable[Target]) -> str:
    """Every target with its measured figure and verdict."""
    return table(
        ["scenario", "target", "measured", "limit", "verdict"],
        (target.row() for target in targets),
        "llrrc",
    )


@contextlib.contextmanager
def quiet_events() -> Iterator[None]:
    """Run without the default structlog observer (a simulated outage logs thousands of lines)."""
    removed = False
    with contextlib.suppress(ValueError):
        events.remove_observer(events.log_event)
        removed = True
    try:
        yield
    finally:
        if removed:
            events.add_observer(events.log_event)


@contextlib.contextmanager
def observers(*, enabled: bool) -> Iterator[None]:
    """With the default structlog observer as users have it, or without it."""
    if enabled:
        yield
        return
    with quiet_events():
        yield


async def time_batch(call: Callable[[], Awaitable[object]], batch: int) -> int:
    """Nanoseconds for ``batch`` awaited calls, back to back in one coroutine."""
    started = time.perf_counter_ns()
    for _ in range(batch):
        await call()
    return time.perf_counter_ns() - started


class Timed(Protocol):
    """One variant of a real-time benchmark: a call, timed with or without observers."""

    key: str
    call: Callable[[], Awaitable[object]]
    observers: bool


async def interleaved(
    variants: Sequence[Timed], *, rounds: int, batch: int, warmup: int
) -> dict[str, list[float]]:
    """Per-call ns of every variant, one batch per round, variants taking turns.

    Each round starts at a different variant, so machine noise lands on all alike; the
    loop runs once between batches, as it would between requests in a service.
    """
    samples: dict[str, list[float]] = {variant.key: [] for variant in variants}
    gc.collect()
    for round_no in range(warmup + rounds):
        start = round_no % len(variants)
        for variant in [*variants[start:], *variants[:start]]:
            with observers(enabled=variant.observers):
                elapsed = await time_batch(variant.call, batch)
            if round_no >= warmup:
                samples[variant.key].append(elapsed / batch)
            await asyncio.sleep(0)
    return samples


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed the ``random`` module (tenacity's backoff jitter draws from it), then restore it."""
    saved = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(saved)


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib as mpl  # noqa: PLC0415 - a benchmark-only dependency, loaded when plotting

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def log_x(axis: Any, ticks: Sequence[float]) -> None:
    """A log-scale x axis labelled with plain numbers at ``ticks``."""
    from matplotlib.ticker import NullFormatter  # noqa: PLC0415 - loaded when plotting

    axis.set_xscale("log")
    axis.set_xticks(list(ticks))
    axis.set_xticklabels([f"{tick:g}" for tick in ticks])
    axis.xaxis.set_minor_formatter(NullFormatter())


def save(figure: Any, out_dir: Path, name: str) -> str:
    """Write ``figure`` as ``out_dir/name`` (PNG) and close it; returns the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return str(path)


def cdf_points(values: Sequence[float]) -> tuple[list[float], list[float]]:
    """Sorted values and their empirical CDF, for a step plot."""
    ordered = sorted(values)
    n = len(ordered)
    return ordered, [(i + 1) / n for i in range(n)]


def scenario_main(
    doc: str | None, run: Callable[..., dict[str, Any]], argv: list[str] | None
) -> int:
    """Run one scenario alone and print its table: every scenario module's ``main``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    result = run(args.out, quick=args.quick)
    print(result["table"])
    for target in result["targets"]:
        print(" | ".join(target.row()))
    print(json.dumps({"plots": result["plots"], "wall_s": round(result["wall_s"], 1)}))
    return 0
