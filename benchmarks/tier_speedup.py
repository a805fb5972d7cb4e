"""Scenario 2: the retrieval tier run sequentially and in parallel, against the ideal speedup.

Run from the repository root::

    .venv/bin/python benchmarks/tier_speedup.py [--quick] [--out DIR]

What is measured
    The example workflow's retrieval tier: RAG (median 80 ms), tools (120 ms) and memory
    search (40 ms), lognormal latencies (sigma 0.4) drawn per request from a fixed seed.
    Each request runs once through ``Tier(parallel=False)`` and once through
    ``Tier(parallel=True)``, every task behind ``retry > circuit_breaker > timeout(5)``
    with its ``default`` as the safe default. The ideal parallel latency of a request is
    its slowest backend, the ideal speedup ``sum / max`` of its three latencies.

How
    Simulated time (``resilience.testing.run_simulated``): requests one after the other,
    the latency distributions exact and reproducible. On simulated time the runner's own
    CPU cost is invisible, so a second, real-time pass runs the parallel tier on the
    standard event loop with the same latencies scaled down 10x (backends really sleep)
    and reports how far the tier's wall time lies above its slowest task.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import TYPE_CHECKING, Any

from _stats import (
    SEED,
    Target,
    cdf_points,
    fmt,
    log_x,
    percentile,
    pyplot,
    quiet_events,
    save,
    scenario_main,
    seeded,
    table,
)
from _workflow import RETRIEVAL, backends, draw_latencies

from resilience import (
    Pipeline,
    ResilienceSettings,
    circuit_breaker,
    compose,
    retry,
    timeout,
)
from resilience.testing import reset_state, run_simulated
from resilience.tiers import Task, Tier

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

NAME = "tier_speedup"
TITLE = "Tier speedup (simulated time, plus a real-time check)"
TIER = "retrieval"
REQUESTS = 2000
REALTIME_REQUESTS = 200
REALTIME_SCALE = 0.1
REALTIME_WARMUP = 10
QUICK_REQUESTS = 40
QUICK_REALTIME_REQUESTS = 5
EFFICIENCY_TARGET = 0.98
GAP_TARGET_MS = 1.0


def _policy() -> Pipeline:
    return compose(retry(), circuit_breaker(), timeout(5.0))


def build_tier(latencies: Sequence[tuple[float, ...]], *, parallel: bool) -> Tier:
    """The retrieval tier over simulated backends playing ``latencies``."""
    tasks = [
        Task(backend.spec.key, backend, default=backend.spec.default, backend=backend.spec.backend,
             policy=_policy())
        for backend in backends(latencies)
    ]  # fmt: skip
    return Tier(TIER, tasks, parallel=parallel, timeout_s=10.0, settings=ResilienceSettings())


def _slowest_task(state: dict[str, Any]) -> float:
    return max(task["duration_s"] for task in state["metadata"][TIER]["tasks"].values())


async def _simulated(latencies: Sequence[tuple[float, ...]]) -> list[dict[str, float]]:
    loop = asyncio.get_running_loop()
    sequential = build_tier(latencies, parallel=False)
    parallel = build_tier(latencies, parallel=True)
    rows = []
    for request, drawn in enumerate(latencies):
        walls = {}
        for mode, tier in (("sequential", sequential), ("parallel", parallel)):
            state: dict[str, Any] = {"query": f"q{request}", "request": request}
            started = loop.time()
            await tier.run(state)
            walls[mode] = loop.time() - started
            if state["metadata"][TIER]["succeeded"] != len(RETRIEVAL):
                raise RuntimeError(f"request {request}: {state['metadata'][TIER]}")
            if mode == "parallel":
                walls["gap"] = walls[mode] - _slowest_task(state)
                walls["reported_speedup"] = state["metadata"][TIER]["speedup"]
        rows.append({**walls, "ideal": max(drawn), "sum": sum(drawn)})
    return rows


async def _realtime(latencies: Sequence[tuple[float, ...]], warmup: int) -> list[dict[str, float]]:
    tier = build_tier(latencies, parallel=True)
    rows = []
    for request in range(len(latencies)):
        state: dict[str, Any] = {"query": f"q{request}", "request": request}
        started = time.perf_counter()
        await tier.run(state)
        wall = time.perf_counter() - started
        slowest = _slowest_task(state)
        if request >= warmup:
            rows.append({"wall": wall, "slowest": slowest, "gap": wall - slowest})
    return rows


def run(
    out_dir: Path | None = None,
    *,
    quick: bool = False,
    requests: int | None = None,
    realtime_requests: int | None = None,
    seed: int = SEED,
) -> dict[str, Any]:
    """Run the scenario; returns its figures, targets, table and plot paths."""
    requests = requests or (QUICK_REQUESTS if quick else REQUESTS)
    realtime_requests = realtime_requests or (
        QUICK_REALTIME_REQUESTS if quick else REALTIME_REQUESTS
    )
    warmup = 1 if quick else REALTIME_WARMUP
    started = time.perf_counter()
    rng = random.Random(seed)
    latencies = draw_latencies(rng, requests)
    scaled = [
        tuple(value * REALTIME_SCALE for value in drawn)
        for drawn in draw_latencies(rng, realtime_requests + warmup)
    ]
    with quiet_events(), seeded(seed):
        reset_state()
        sim = run_simulated(_simulated(latencies))
        reset_state()
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            real = runner.run(_realtime(scaled, warmup))
        reset_state()
    figures = _figures(sim, real)
    figures["requests"] = requests
    figures["realtime_requests"] = len(real)
    figures["realtime_scale"] = REALTIME_SCALE
    targets = [
        Target(
            NAME,
            "parallel speedup / ideal sum/max, median per request (lower of simulated, real time)",
            min(figures["efficiency_median"], figures["realtime_efficiency_median"]),
            EFFICIENCY_TARGET,
            at_most=False,
            unit="",
        ),
        Target(
            NAME,
            "parallel tier wall time minus its slowest task, p99 (real time)",
            figures["realtime_gap_p99_ms"],
            GAP_TARGET_MS,
            unit="ms",
        ),
    ]
    plots = [] if out_dir is None else [_plot(sim, real, out_dir)]
    return {
        "scenario": NAME,
        "title": TITLE,
        "settings": {
            "seed": seed,
            "backends": [
                {"backend": s.backend, "median_s": s.median_s, "sigma": s.sigma} for s in RETRIEVAL
            ],
            "policy": "retry > circuit_breaker > timeout(5), each Task's default",
        },
        "figures": figures,
        "targets": targets,
        "table": _table(figures),
        "plots": plots,
        "wall_s": time.perf_counter() - started,
    }


def _figures(sim: list[dict[str, float]], real: list[dict[str, float]]) -> dict[str, Any]:
    efficiency = [
        (row["sequential"] / row["parallel"]) / (row["sum"] / row["ideal"]) for row in sim
    ]
    real_efficiency = [row["slowest"] / row["wall"] for row in real]
    figures: dict[str, Any] = {}
    for column in ("sequential", "parallel", "ideal"):
        values = [row[column] for row in sim]
        figures[f"{column}_p50_s"] = percentile(values, 0.5)
        figures[f"{column}_p99_s"] = percentile(values, 0.99)
    figures["speedup_mean"] = statistics.fmean(row["sequential"] / row["parallel"] for row in sim)
    figures["ideal_speedup_mean"] = statistics.fmean(row["sum"] / row["ideal"] for row in sim)
    figures["reported_speedup_mean"] = statistics.fmean(row["reported_speedup"] for row in sim)
    figures["efficiency_median"] = statistics.median(efficiency)
    figures["efficiency_min"] = min(efficiency)
    figures["gap_max_ms"] = max(row["gap"] for row in sim) * 1000
    gaps_ms = [row["gap"] * 1000 for row in real]
    figures["realtime_gap_p50_ms"] = percentile(gaps_ms, 0.5)
    figures["realtime_gap_p99_ms"] = percentile(gaps_ms, 0.99)
    figures["realtime_gap_max_ms"] = max(gaps_ms)
    figures["realtime_efficiency_median"] = statistics.median(real_efficiency)
    figures["realtime_efficiency_min"] = min(real_efficiency)
    return figures


def _table(f: dict[str, Any]) -> str:
    rows = [
        ["sequential tier", fmt(f["sequential_p50_s"] * 1000, "ms"),
         fmt(f["sequential_p99_s"] * 1000, "ms"), "1x", "-"],
        ["parallel tier", fmt(f["parallel_p50_s"] * 1000, "ms"),
         fmt(f["parallel_p99_s"] * 1000, "ms"), fmt(f["speedup_mean"], "x"),
         f"{f['efficiency_median']:.4f} (min {f['efficiency_min']:.4f})"],
        ["ideal (slowest backend)", fmt(f["ideal_p50_s"] * 1000, "ms"),
         fmt(f["ideal_p99_s"] * 1000, "ms"), fmt(f["ideal_speedup_mean"], "x"), "1"],
        [f"parallel tier, real time ({f['realtime_scale']:g}x latencies)",
         f"+{fmt(f['realtime_gap_p50_ms'], 'ms')} over slowest",
         f"+{fmt(f['realtime_gap_p99_ms'], 'ms')} over slowest", "-",
         f"{f['realtime_efficiency_median']:.4f} (min {f['realtime_efficiency_min']:.4f})"],
    ]  # fmt: skip
    note = (
        f"{f['requests']:,} requests on simulated time (the tier's own metadata reports a mean "
        f"speedup of {f['reported_speedup_mean']:.3f}x; the parallel tier's largest gap over "
        f"its slowest task: {fmt(f['gap_max_ms'], 'ms')}); {f['realtime_requests']} requests "
        "on the real event loop."
    )
    return (
        table(["variant", "p50", "p99", "mean speedup", "speedup / ideal (median)"], rows)
        + "\n\n"
        + note
    )


def _plot(sim: list[dict[str, float]], real: list[dict[str, float]], out_dir: Path) -> str:
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for column, label in (
        ("sequential", "sequential tier"),
        ("parallel", "parallel tier"),
        ("ideal", "ideal: slowest backend"),
    ):
        xs, ys = cdf_points([row[column] * 1000 for row in sim])
        left.step(xs, ys, where="post", label=label, linestyle="--" if column == "ideal" else "-")
    log_x(left, (50, 100, 200, 300, 500))
    left.set_xlabel("request latency (ms, simulated)")
    left.set_ylabel("share of requests")
    left.set_title("Retrieval tier latency CDF")
    left.grid(visible=True, which="both", alpha=0.3)
    left.legend()
    gaps_us = [row["gap"] * 1e6 for row in real]
    right.hist(gaps_us, bins=30, color="tab:green")
    right.axvline(GAP_TARGET_MS * 1000, color="tab:red", linestyle="--", label="1 ms target")
    right.set_xlabel("parallel tier wall time - slowest task (us, real time)")
    right.set_ylabel("requests")
    right.set_title("Runner overhead above the slowest task")
    right.legend()
    return save(figure, out_dir, "tier_speedup.png")


def main(argv: list[str] | None = None) -> int:
    """Run the scenario alone and print its table."""
    return scenario_main(__doc__, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
