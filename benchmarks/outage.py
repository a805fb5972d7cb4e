"""Scenario 3: one backend hangs mid-run and recovers; the original design against the toolkit.

Run from the repository root::

    .venv/bin/python benchmarks/outage.py [--quick] [--out DIR]

What is measured
    The example workflow's retrieval tier (RAG ~80 ms, tools ~120 ms, memory search
    ~40 ms; lognormal latencies drawn per request from a fixed seed) under an open-loop
    Poisson load of 50 requests/s for 120 simulated seconds. The tools backend hangs
    (every call started in the window waits until it is cancelled) from t = 40 s to
    t = 80 s.

    * original design: ``asyncio.gather`` of one guarded call per backend,
      ``try: await asyncio.wait_for(call, 5) except Exception: default``;
    * toolkit: ``Tier(parallel=True, timeout_s=5)`` whose tasks run through
      ``circuit_breaker(failure_threshold=5, reset_timeout_s=5) >
      adaptive_deadline(initial_s=5, max_s=5)``, each task's ``default`` standing in
      for a failed or rejected call (the tier's safe default, reported in its metadata);
    * healthy: the toolkit tier on the same requests with no outage, the reference.

    For each design: tier latency p50 and p99 before, during and after the outage; the
    calls the dead backend received before the breaker opened (started, and failed, that
    is counted by the breaker); the tier's p99 once the breaker is open against the
    healthy tier's p99 over the same requests; and the time from the backend healing to
    the first request that gets all three results back within the healthy p99.

How
    Simulated time (``resilience.testing.run_simulated``), a fresh loop and fresh shared
    state (breakers, learned deadlines) per design; breaker transitions are timed by an
    event observer.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from _stats import (
    SEED,
    Target,
    fmt,
    percentile,
    pyplot,
    quiet_events,
    save,
    scenario_main,
    seeded,
    table,
)
from _workflow import (
    RETRIEVAL,
    SimulatedBackend,
    backends,
    draw_latencies,
    open_loop,
    poisson_arrivals,
)

from resilience import (
    ResilienceSettings,
    adaptive_deadline,
    circuit_breaker,
    compose,
)
from resilience.events import BreakerStateChanged, Event
from resilience.testing import EventCapture, reset_state, run_simulated
from resilience.tiers import Task, Tier

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

NAME = "outage"
TITLE = "Outage: one backend hangs for a while (simulated time)"
TIER = "retrieval"
DOWN = "tools"
ORIGINAL_TIMEOUT_S = 5.0
FAILURE_THRESHOLD = 5
P99_TARGET = 1.05


@dataclass(frozen=True)
class Sizes:
    """The load and the outage window."""

    duration_s: float = 120.0
    rate_per_s: float = 50.0
    down_from_s: float = 40.0
    down_until_s: float = 80.0
    reset_timeout_s: float = 5.0


QUICK = Sizes(duration_s=14.0, rate_per_s=20.0, down_from_s=4.0, down_until_s=9.0,
              reset_timeout_s=1.0)  # fmt: skip


@dataclass(frozen=True)
class Request:
    """One request's outcome: when it started, how long the tier took, results delivered."""

    index: int
    started: float
    latency: float
    delivered: int


class TimedCapture(EventCapture):
    """An :class:`EventCapture` that also notes the loop time of each event."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def __call__(self, event: Event) -> None:
        """Record one event and when it happened."""
        super().__call__(event)
        self.times.append(asyncio.get_running_loop().time())

    def transitions(self, backend: str) -> list[tuple[float, str, str]]:
        """``(time, old, new)`` of every breaker transition of ``backend``."""
        return [
            (at, event.old, event.new)
            for at, event in zip(self.times, self.events, strict=True)
            if isinstance(event, BreakerStateChanged) and event.backend == backend
        ]


def toolkit_tier(simulated: Sequence[SimulatedBackend], reset_timeout_s: float) -> Tier:
    """The retrieval tier with breakers and learned deadlines; each task's default stands in."""
    tasks = []
    for backend in simulated:
        spec = backend.spec
        policy = compose(
            circuit_breaker(failure_threshold=FAILURE_THRESHOLD, reset_timeout_s=reset_timeout_s),
            adaptive_deadline(initial_s=ORIGINAL_TIMEOUT_S, max_s=ORIGINAL_TIMEOUT_S),
        )
        tasks.append(
            Task(spec.key, backend, default=spec.default, backend=spec.backend, policy=policy)
        )
    return Tier(TIER, tasks, parallel=True, timeout_s=5.0, settings=ResilienceSettings())


async def _toolkit(
    simulated: Sequence[SimulatedBackend], arrivals: Sequence[float], reset_timeout_s: float
) -> list[Request]:
    loop = asyncio.get_running_loop()
    tier = toolkit_tier(simulated, reset_timeout_s)

    async def handle(index: int) -> Request:
        state: dict[str, Any] = {"query": f"q{index}", "request": index}
        started = loop.time()
        await tier.run(state)
        delivered = sum(isinstance(state[spec.key], tuple) for spec in RETRIEVAL)
        return Request(index, started, loop.time() - started, delivered)

    return await open_loop(arrivals, handle)


async def _original(
    simulated: Sequence[SimulatedBackend], arrivals: Sequence[float]
) -> list[Request]:
    loop = asyncio.get_running_loop()

    async def guarded(backend: SimulatedBackend, state: dict[str, Any]) -> tuple[object, bool]:
        try:
            return await asyncio.wait_for(backend(state), ORIGINAL_TIMEOUT_S), True
        except Exception:  # noqa: BLE001 - the original workflow's per-task isolation
            return backend.spec.default(), False

    async def handle(index: int) -> Request:
        state: dict[str, Any] = {"query": f"q{index}", "request": index}
        started = loop.time()
        results = await asyncio.gather(*(guarded(backend, state) for backend in simulated))
        delivered = sum(ok for _, ok in results)
        return Request(index, started, loop.time() - started, delivered)

    return await open_loop(arrivals, handle)


def _phase(requests: Sequence[Request], start: float, end: float) -> list[Request]:
    return [r for r in requests if start <= r.started < end]


def _latency(requests: Sequence[Request], q: float) -> float:
    return percentile([r.latency for r in requests], q)


def run(
    out_dir: Path | None = None,
    *,
    quick: bool = False,
    sizes: Sizes | None = None,
    seed: int = SEED,
) -> dict[str, Any]:
    """Run the scenario; returns its figures, targets, table and plot paths."""
    sizes = sizes or (QUICK if quick else Sizes())
    started = time.perf_counter()
    rng = random.Random(seed)
    arrivals = poisson_arrivals(rng, sizes.rate_per_s, sizes.duration_s)
    latencies = draw_latencies(rng, len(arrivals))
    window = (sizes.down_from_s, sizes.down_until_s)
    runs: dict[str, list[Request]] = {}
    down_backends: dict[str, SimulatedBackend] = {}
    with quiet_events(), seeded(seed):
        reset_state()
        runs["healthy"] = run_simulated(
            _toolkit(backends(latencies), arrivals, sizes.reset_timeout_s)
        )
        reset_state()
        simulated = backends(latencies, {DOWN: window})
        runs["original"] = run_simulated(_original(simulated, arrivals))
        down_backends["original"] = _named(simulated, DOWN)
        reset_state()
        simulated = backends(latencies, {DOWN: window})
        with TimedCapture() as captured:
            runs["toolkit"] = run_simulated(_toolkit(simulated, arrivals, sizes.reset_timeout_s))
        down_backends["toolkit"] = _named(simulated, DOWN)
        reset_state()
    transitions = captured.transitions(DOWN)
    figures = _figures(runs, down_backends, transitions, sizes)
    targets = [
        Target(
            NAME,
            f"failed calls to the dead backend before its breaker opened "
            f"(failure_threshold={FAILURE_THRESHOLD})",
            figures["toolkit_failures_until_open"],
            FAILURE_THRESHOLD,
            unit="calls",
        ),
        Target(
            NAME,
            "tier p99 once the breaker is open / healthy tier p99 over the same requests",
            figures["toolkit_open_p99_vs_healthy"],
            P99_TARGET,
        ),
    ]
    plots = [] if out_dir is None else [_plot(runs, transitions, sizes, figures, out_dir)]
    return {
        "scenario": NAME,
        "title": TITLE,
        "settings": {
            "seed": seed,
            **sizes.__dict__,
            "down_backend": DOWN,
            "original": f"gather of asyncio.wait_for(call, {ORIGINAL_TIMEOUT_S:g}) + try/except",
            "toolkit": (
                f"Tier(timeout_s=5) of circuit_breaker(failure_threshold={FAILURE_THRESHOLD}, "
                f"reset_timeout_s={sizes.reset_timeout_s:g}) > adaptive_deadline(initial_s=5, "
                "max_s=5), each Task's default as the safe default"
            ),
        },
        "figures": figures,
        "targets": targets,
        "table": _table(figures, sizes),
        "plots": plots,
        "wall_s": time.perf_counter() - started,
    }


def _named(simulated: Sequence[SimulatedBackend], name: str) -> SimulatedBackend:
    return next(backend for backend in simulated if backend.spec.backend == name)


def _figures(
    runs: dict[str, list[Request]],
    down: dict[str, SimulatedBackend],
    transitions: list[tuple[float, str, str]],
    sizes: Sizes,
) -> dict[str, Any]:
    heal = sizes.down_until_s
    phases = {
        "before": (0.0, sizes.down_from_s),
        "during": (sizes.down_from_s, heal),
        "after": (heal, float("inf")),
    }
    figures: dict[str, Any] = {"requests": len(runs["healthy"])}
    healthy = runs["healthy"]
    healthy_p99 = _latency(healthy, 0.99)
    figures["healthy_p50_s"] = _latency(healthy, 0.5)
    figures["healthy_p99_s"] = healthy_p99
    for design, requests in runs.items():
        for phase, (start, end) in phases.items():
            chosen = _phase(requests, start, end)
            figures[f"{design}_{phase}_p50_s"] = _latency(chosen, 0.5)
            figures[f"{design}_{phase}_p99_s"] = _latency(chosen, 0.99)
        during = _phase(requests, *phases["during"])
        figures[f"{design}_during_slow_requests"] = sum(r.latency > 1.0 for r in during)
        figures[f"{design}_during_incomplete"] = sum(r.delivered < len(RETRIEVAL) for r in during)
    for design, backend in down.items():
        figures[f"{design}_calls_to_dead_backend"] = sum(call.down for call in backend.calls)
        recovered = next(
            (
                r
                for r in runs[design]
                if r.started >= heal and r.delivered == len(RETRIEVAL) and r.latency <= healthy_p99
            ),
            None,
        )
        figures[f"{design}_recovery_s"] = (
            None if recovered is None else recovered.started + recovered.latency - heal
        )
    opened = [at for at, _, new in transitions if new == "open" and at >= sizes.down_from_s]
    calls = down["toolkit"].calls
    if opened:
        first_open = opened[0]
        figures["toolkit_opened_after_s"] = first_open - sizes.down_from_s
        figures["toolkit_calls_until_open"] = sum(c.down and c.started <= first_open for c in calls)
        figures["toolkit_failures_until_open"] = sum(
            c.down and c.outcome == "cancelled" and c.ended <= first_open for c in calls
        )
        open_window = [r for r in runs["toolkit"] if first_open <= r.started < heal]
        same = {r.index for r in open_window}
        figures["toolkit_open_p99_s"] = _latency(open_window, 0.99)
        figures["healthy_same_requests_p99_s"] = _latency(
            [r for r in healthy if r.index in same], 0.99
        )
        figures["toolkit_open_p99_vs_healthy"] = (
            figures["toolkit_open_p99_s"] / figures["healthy_same_requests_p99_s"]
        )
        figures["toolkit_trial_calls"] = sum(c.down and c.started > first_open for c in calls)
    else:
        for key in ("opened_after_s", "calls_until_open", "failures_until_open", "open_p99_s",
                    "open_p99_vs_healthy", "trial_calls"):  # fmt: skip
            figures[f"toolkit_{key}"] = float("nan")
    figures["toolkit_breaker_opens"] = sum(new == "open" for _, _, new in transitions)
    return figures


def _s(value: float | None) -> str:
    return "-" if value is None else fmt(value * 1000, "ms") if value < 1 else fmt(value, "s")


def _table(f: dict[str, Any], sizes: Sizes) -> str:
    rows = []
    for design, label in (
        ("healthy", "healthy (toolkit, no outage)"),
        ("original", f"original: wait_for({ORIGINAL_TIMEOUT_S:g} s) + try/except"),
        ("toolkit", "toolkit: breaker + adaptive deadline + default"),
    ):
        cells = [label]
        cells += [
            f"{_s(f[f'{design}_{phase}_p50_s'])} / {_s(f[f'{design}_{phase}_p99_s'])}"
            for phase in ("before", "during", "after")
        ]
        cells.append(str(f[f"{design}_during_slow_requests"]))
        cells.append(str(f[f"{design}_during_incomplete"]))
        cells.append(str(f.get(f"{design}_calls_to_dead_backend", "-")))
        cells.append(_s(f.get(f"{design}_recovery_s")))
        rows.append(cells)
    main = table(
        ["design", "before p50 / p99", "during p50 / p99", "after p50 / p99",
         "requests > 1 s during", "requests missing a result during", "calls to dead backend",
         "recovery after heal"],
        rows,
    )  # fmt: skip
    note = (
        f"{f['requests']:,} requests at {sizes.rate_per_s:g}/s; `{DOWN}` hangs from "
        f"{sizes.down_from_s:g} s to {sizes.down_until_s:g} s. The breaker opened "
        f"{_s(f['toolkit_opened_after_s'])} into the outage after "
        f"{f['toolkit_failures_until_open']} failed calls "
        f"({f['toolkit_calls_until_open']} calls had started by then, the rest still in "
        f"flight), then let {f['toolkit_trial_calls']} half-open trial calls through "
        f"({f['toolkit_breaker_opens']} openings). Once open, the toolkit tier's p99 was "
        f"{_s(f['toolkit_open_p99_s'])} against {_s(f['healthy_same_requests_p99_s'])} for "
        f"the healthy tier on the same requests ({f['toolkit_open_p99_vs_healthy']:.3f}x)."
        " Recovery: time from the heal to the end of the first request with all three "
        "results within the healthy p99."
    )
    return main + "\n\n" + note


def _plot(
    runs: dict[str, list[Request]],
    transitions: list[tuple[float, str, str]],
    sizes: Sizes,
    figures: dict[str, Any],
    out_dir: Path,
) -> str:
    plt = pyplot()
    figure, axes = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, sharey=True)
    panels = (
        ("original", f"original design: asyncio.wait_for({ORIGINAL_TIMEOUT_S:g} s) + try/except",
         "tab:red"),
        ("toolkit", "toolkit: circuit breaker + adaptive deadline + safe default", "tab:blue"),
    )  # fmt: skip
    for axis, (design, title, color) in zip(axes, panels, strict=True):
        requests = runs[design]
        axis.scatter(
            [r.started for r in requests],
            [r.latency for r in requests],
            s=3,
            color=color,
            alpha=0.5,
            label="tier latency per request",
            zorder=2,
        )
        axis.axvspan(
            sizes.down_from_s, sizes.down_until_s, color="0.9", label=f"{DOWN} down", zorder=0
        )
        axis.axhline(figures["healthy_p99_s"], color="0.3", linestyle=":", label="healthy tier p99")
        axis.set_yscale("log")
        axis.set_ylabel("tier latency (s)")
        axis.set_title(title)
        axis.grid(visible=True, which="both", alpha=0.3)
    for at, _, new in transitions:
        if new == "open":
            axes[1].axvline(at, color="tab:orange", linewidth=0.8, alpha=0.7)
    axes[1].plot([], [], color="tab:orange", label="breaker opened")
    axes[0].legend(loc="upper left", markerscale=4)
    axes[1].legend(loc="upper left", markerscale=4)
    axes[1].set_xlabel("request start (simulated s)")
    return save(figure, out_dir, "outage_latency.png")


def main(argv: list[str] | None = None) -> int:
    """Run the scenario alone and print its table."""
    return scenario_main(__doc__, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
