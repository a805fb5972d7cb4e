"""Scenario 5: 10 to 10,000 concurrent calls through one policy stack, in real time.

Run from the repository root::

    .venv/bin/python benchmarks/scale.py [--quick] [--out DIR]

What is measured
    ``N`` calls started at once with ``asyncio.gather``, each going through the full stack
    ``safe_default > retry > circuit_breaker > timeout(5)`` to a backend that yields to
    the loop once (``await asyncio.sleep(0)``), so all ``N`` are in flight together.
    For N = 10, 100, 1,000 and 10,000: the cost per call (wall time / calls), calls per
    second, and peak traced memory per in-flight call. The same gathers over the bare
    backend run beside them, as the reference for what asyncio itself costs at each N.

How
    One process, the standard asyncio event loop, real time. A sample runs ``N``-wide
    gathers back to back until about 20,000 calls are done, timed with
    ``time.perf_counter_ns``. Every round takes one sample of each (stack, N) pair in a
    rotating order, after a discarded warm-up round; the figures are medians over
    rounds. The share of time spent in the cyclic garbage collector comes from one more
    sample per pair, timed with ``gc.callbacks``. Memory comes from separate runs under
    ``tracemalloc`` (peak during one gather minus the traced size before it, divided by
    ``N``; the median of a few runs), since tracing slows every allocation. The garbage
    collector stays on. The target is the ratio of the per-call cost at the largest N to
    that at the smallest.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import statistics
import time
import tracemalloc
from typing import TYPE_CHECKING, Any

from _stats import Target, fmt, pyplot, quiet_events, save, scenario_main, table

from resilience import circuit_breaker, compose, retry, safe_default, timeout
from resilience.testing import reset_state

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from pathlib import Path

NAME = "scale"
TITLE = "Scale: concurrent calls through one policy stack (real time)"
SIZES = (10, 100, 1_000, 10_000)
CALLS_PER_SAMPLE = 20_000
ROUNDS = 9
MEMORY_RUNS = 3
QUICK_SIZES = (10, 100)
QUICK_CALLS_PER_SAMPLE = 200
QUICK_ROUNDS = 2
QUICK_MEMORY_RUNS = 1
RATIO_TARGET = 1.5

TOOLKIT = "toolkit"
BARE = "bare"

_builds = itertools.count(1)


async def backend() -> int:
    """A backend that yields to the loop once, so every call of a gather is in flight."""
    await asyncio.sleep(0)
    return 1


def build_stack() -> Callable[[], Awaitable[int | None]]:
    """``backend`` behind the full policy stack, with a fresh breaker."""
    stack = compose(
        safe_default(None), retry(), circuit_breaker(), timeout(5.0),
        backend=f"scale_{next(_builds)}",
    )  # fmt: skip
    return stack(backend)


async def _sample(call: Callable[[], Awaitable[object]], n: int, calls: int) -> float:
    """Nanoseconds per call of ``n``-wide gathers, about ``calls`` calls in all."""
    repeats = max(1, calls // n)
    started = time.perf_counter_ns()
    for _ in range(repeats):
        await asyncio.gather(*[call() for _ in range(n)])
    return (time.perf_counter_ns() - started) / (repeats * n)


async def _peak_bytes(call: Callable[[], Awaitable[object]], n: int) -> float:
    """Peak traced memory per in-flight call during one ``n``-wide gather."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await asyncio.gather(*[call() for _ in range(n)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - before) / n


class _GcClock:
    """Time spent in the cyclic garbage collector while installed (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:  # noqa: ARG002 - gc's signature
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started

    async def share(self, call: Callable[[], Awaitable[object]], n: int, calls: int) -> float:
        """Share of one sample's wall time spent collecting garbage."""
        self.seconds = 0.0
        gc.callbacks.append(self)
        try:
            started = time.perf_counter()
            await _sample(call, n, calls)
            wall = time.perf_counter() - started
        finally:
            gc.callbacks.remove(self)
        return self.seconds / wall


async def measure(
    sizes: Sequence[int], calls: int, rounds: int, memory_runs: int
) -> dict[str, dict[int, dict[str, float]]]:
    """Median ns per call and bytes per in-flight call for each stack and N."""
    variants = {TOOLKIT: build_stack(), BARE: backend}
    for name, call in variants.items():
        results = await asyncio.gather(*[call() for _ in range(max(sizes))])
        if any(result != 1 for result in results):
            raise RuntimeError(f"{name} did not answer every call")
    pairs = [(name, n) for n in sizes for name in variants]
    samples: dict[tuple[str, int], list[float]] = {pair: [] for pair in pairs}
    gc.collect()
    for round_no in range(1 + rounds):
        start = round_no % len(pairs)
        for name, n in pairs[start:] + pairs[:start]:
            elapsed = await _sample(variants[name], n, calls)
            if round_no:
                samples[name, n].append(elapsed)
            await asyncio.sleep(0)
    figures: dict[str, dict[int, dict[str, float]]] = {name: {} for name in variants}
    clock = _GcClock()
    for name, n in pairs:
        memory = [await _peak_bytes(variants[name], n) for _ in range(memory_runs)]
        figures[name][n] = {
            "ns_per_call": statistics.median(samples[name, n]),
            "bytes_per_call": statistics.median(memory),
            "gc_share": await clock.share(variants[name], n, calls),
        }
    return figures


def run(
    out_dir: Path | None = None,
    *,
    quick: bool = False,
    sizes: Sequence[int] | None = None,
    calls: int | None = None,
    rounds: int | None = None,
) -> dict[str, Any]:
    """Run the scenario; returns its figures, targets, table and plot paths."""
    sizes = tuple(sizes or (QUICK_SIZES if quick else SIZES))
    calls = calls or (QUICK_CALLS_PER_SAMPLE if quick else CALLS_PER_SAMPLE)
    rounds = rounds or (QUICK_ROUNDS if quick else ROUNDS)
    memory_runs = QUICK_MEMORY_RUNS if quick else MEMORY_RUNS
    started = time.perf_counter()
    with quiet_events():
        reset_state()
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            measured = runner.run(measure(sizes, calls, rounds, memory_runs))
        reset_state()
    smallest, largest = sizes[0], sizes[-1]
    figures: dict[str, Any] = {"sizes": list(sizes), "calls_per_sample": calls, "rounds": rounds}
    for name, by_n in measured.items():
        for n, values in by_n.items():
            figures[f"{name}_ns_per_call_{n}"] = values["ns_per_call"]
            figures[f"{name}_calls_per_s_{n}"] = 1e9 / values["ns_per_call"]
            figures[f"{name}_bytes_per_call_{n}"] = values["bytes_per_call"]
            figures[f"{name}_gc_share_{n}"] = values["gc_share"]
        figures[f"{name}_time_ratio"] = by_n[largest]["ns_per_call"] / by_n[smallest]["ns_per_call"]
        figures[f"{name}_memory_ratio"] = (
            by_n[largest]["bytes_per_call"] / by_n[smallest]["bytes_per_call"]
        )
    targets = [
        Target(
            NAME,
            f"per-call cost at {largest:,} concurrent calls / at {smallest:,} (full stack)",
            figures[f"{TOOLKIT}_time_ratio"],
            RATIO_TARGET,
        )
    ]
    plots = [] if out_dir is None else [_plot(measured, out_dir)]
    return {
        "scenario": NAME,
        "title": TITLE,
        "settings": {
            "stack": "safe_default > retry > circuit_breaker > timeout(5)",
            "backend": "await asyncio.sleep(0); return 1",
            "sizes": list(sizes),
            "calls_per_sample": calls,
            "rounds": rounds,
            "memory_runs": memory_runs,
        },
        "figures": figures,
        "targets": targets,
        "table": _table(measured, figures, sizes),
        "plots": plots,
        "wall_s": time.perf_counter() - started,
    }


def _table(
    measured: dict[str, dict[int, dict[str, float]]], f: dict[str, Any], sizes: Sequence[int]
) -> str:
    rows = []
    for n in sizes:
        toolkit, bare = measured[TOOLKIT][n], measured[BARE][n]
        rows.append(
            [
                f"{n:,}",
                fmt(toolkit["ns_per_call"] / 1000, "us"),
                f"{1e9 / toolkit['ns_per_call']:,.0f}",
                fmt(toolkit["bytes_per_call"], "B"),
                f"{toolkit['gc_share']:.0%}",
                fmt(bare["ns_per_call"] / 1000, "us"),
                fmt(bare["bytes_per_call"], "B"),
                f"{bare['gc_share']:.0%}",
                fmt(toolkit["ns_per_call"] / bare["ns_per_call"], "x"),
            ]
        )
    note = (
        f"Per-call cost at {sizes[-1]:,} / at {sizes[0]:,}: full stack "
        f"{f[f'{TOOLKIT}_time_ratio']:.3f}x (bare gather {f[f'{BARE}_time_ratio']:.3f}x); "
        f"memory per in-flight call {f[f'{TOOLKIT}_memory_ratio']:.3f}x "
        f"(bare {f[f'{BARE}_memory_ratio']:.3f}x). Medians of {f['rounds']} rounds of "
        f"~{f['calls_per_sample']:,} calls per (stack, N). Time in gc: share of one more "
        "sample's wall time spent in the cyclic garbage collector (timed with gc.callbacks)."
    )
    headers = ["concurrent calls", "full stack per call", "full stack calls/s",
               "full stack peak memory / call", "full stack time in gc", "bare per call",
               "bare peak memory / call", "bare time in gc", "full stack / bare"]  # fmt: skip
    return table(headers, rows) + "\n\n" + note


def _plot(measured: dict[str, dict[int, dict[str, float]]], out_dir: Path) -> str:
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, label, color in (
        (TOOLKIT, "full stack", "tab:blue"),
        (BARE, "bare backend", "tab:gray"),
    ):
        sizes = sorted(measured[name])
        left.plot(sizes, [measured[name][n]["ns_per_call"] / 1000 for n in sizes], "o-",
                  label=label, color=color)  # fmt: skip
        right.plot(sizes, [measured[name][n]["bytes_per_call"] for n in sizes], "o-",
                   label=label, color=color)  # fmt: skip
    left.set_ylabel("cost per call (us, real time)")
    left.set_title("Time per call vs concurrency")
    right.set_ylabel("peak traced memory per in-flight call (bytes)")
    right.set_title("Memory per call vs concurrency")
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_ylim(bottom=0)
        axis.set_xlabel("concurrent calls (asyncio.gather)")
        axis.grid(visible=True, which="both", alpha=0.3)
        axis.legend()
    return save(figure, out_dir, "scale.png")


def main(argv: list[str] | None = None) -> int:
    """Run the scenario alone and print its table."""
    return scenario_main(__doc__, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
