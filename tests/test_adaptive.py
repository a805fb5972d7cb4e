"""adaptive_deadline(): a per-attempt limit learned from recent successful latencies."""

from __future__ import annotations

import asyncio

import pytest

from resilience import CallContext, DeadlineExceeded, adaptive_deadline, compose
from resilience.adaptive import LatencyWindow
from resilience.events import AdaptiveDeadlineMoved, TimedOut
from resilience.testing import EventCapture, ScriptedBackend, hang, now, ok

#: The backend name a ScriptedBackend gets when nothing names it.
SCRIPTED = "resilience.testing.faults.ScriptedBackend"


async def test_uses_the_initial_value_until_enough_samples() -> None:
    policy = adaptive_deadline(initial_s=2.0, min_samples=5, window_size=10)
    backend = ScriptedBackend([ok(1, after_s=0.1)] * 4 + [hang()])
    guarded = policy(backend)
    for _ in range(4):
        await guarded()
    start = now()
    with pytest.raises(DeadlineExceeded) as caught:
        await guarded()
    assert now() - start == pytest.approx(2.0, abs=1e-9)
    assert caught.value.limit_s == 2.0


async def test_learns_quantile_times_multiplier_and_reports_the_move() -> None:
    policy = adaptive_deadline(
        quantile=0.99, multiplier=3.0, min_s=0.01, max_s=10, initial_s=5, min_samples=10
    )
    latencies = [0.1] * 99 + [0.2]
    backend = ScriptedBackend([ok(i, after_s=s) for i, s in enumerate(latencies)] + [hang()])
    guarded = policy(backend)
    with EventCapture() as events:
        for _ in latencies:
            await guarded()
        bound = policy.bind(SCRIPTED)
        assert bound.current_s == pytest.approx(0.3)  # p99 (rank 99 of 100) = 0.1, x3
        start = now()
        with pytest.raises(DeadlineExceeded):
            await guarded()
    assert now() - start == pytest.approx(0.3)
    moved = events.of(AdaptiveDeadlineMoved)
    assert len(moved) == 1  # 0.3 from the 10th sample on; smaller moves are not reported
    assert moved[0].old_s == 5.0
    assert moved[0].new_s == pytest.approx(0.3)
    assert moved[0].samples == 10
    assert events.of(TimedOut)[0].limit_s == pytest.approx(0.3)


async def test_clamped_to_min_and_max() -> None:
    fast = adaptive_deadline(min_s=0.5, max_s=3, initial_s=1, min_samples=1).bind("fast")
    fast.observe(0.001, "fast")
    assert fast.current_s == 0.5
    slow = adaptive_deadline(min_s=0.5, max_s=3, initial_s=1, min_samples=1).bind("slow")
    slow.observe(60, "slow")
    assert slow.current_s == 3


def test_memory_per_backend_is_bounded_by_the_window() -> None:
    window = LatencyWindow(100)
    for i in range(100_000):
        window.add(float(i))
    assert len(window) == 100
    assert window.quantile(0.0001) == 99_900.0
    assert window.quantile(1.0) == 99_999.0


def test_window_quantile_is_nearest_rank() -> None:
    window = LatencyWindow(10)
    for value in [5.0, 1.0, 3.0, 2.0, 4.0]:
        window.add(value)
    assert window.quantile(0.5) == 3.0
    assert window.quantile(0.99) == 5.0
    assert window.quantile(0.2) == 1.0


def test_learned_value_is_shared_per_backend() -> None:
    policy = adaptive_deadline(min_samples=1)
    policy.bind("rag").observe(0.4, "rag")
    assert policy.bind("rag").current_s == pytest.approx(0.6)
    assert policy.bind("tools").current_s == 5.0
    assert policy.bind("rag").samples == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantile": 0}, "quantile"),
        ({"quantile": 1.5}, "quantile"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"min_s": 0}, "min_s"),
        ({"initial_s": 100}, "initial_s"),
        ({"min_samples": 0}, "min_samples"),
        ({"min_samples": 50, "window_size": 10}, "min_samples"),
    ],
)
def test_bad_options_fail_when_built(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        adaptive_deadline(**kwargs)  # type: ignore[arg-type]


async def test_a_backend_that_slows_down_for_good_is_not_locked_out() -> None:
    policy = adaptive_deadline(min_s=0.05, max_s=5, initial_s=1, min_samples=20, window_size=100)
    fast = [ok(1, after_s=0.01)] * 100
    slow = ok(2, after_s=0.08)  # slower than the learned limit, still healthy
    backend = ScriptedBackend(fast, then=slow)
    guarded = policy(backend)
    for _ in range(100):
        await guarded()
    assert policy.bind(SCRIPTED).current_s == 0.05
    outcomes = []
    for _ in range(60):
        try:
            outcomes.append(await guarded())
        except DeadlineExceeded:
            outcomes.append("timeout")
    assert outcomes[0] == "timeout"
    assert outcomes[-10:] == [2] * 10  # the limit grew past 0.08 s
    assert policy.bind(SCRIPTED).current_s > 0.08


async def test_the_odd_slow_call_is_still_cut_at_the_learned_limit() -> None:
    policy = adaptive_deadline(multiplier=2, min_s=0.05, max_s=5, initial_s=1, min_samples=10)
    warm = [ok(1, after_s=0.1)] * 10
    backend = ScriptedBackend([*warm, hang(), ok(2, after_s=0.1), hang(), hang(), hang()])
    guarded = policy(backend)
    for _ in range(10):
        await guarded()
    learned = policy.bind(SCRIPTED)
    assert learned.current_s == pytest.approx(0.2)
    cut_after = []
    for _ in range(5):
        start = now()
        try:
            await guarded()
        except DeadlineExceeded:
            cut_after.append(round(now() - start, 9))
    # a slow call, a fast one (the run of timeouts ends), then three slow in a row: each
    # timeout in a row widens the next attempt's limit by the multiplier
    assert cut_after == [0.2, 0.2, 0.4, 0.8]
    assert learned.limit_s == pytest.approx(1.6)


async def test_concurrent_timeouts_widen_the_limit_once_and_never_past_max() -> None:
    policy = adaptive_deadline(initial_s=1.0, max_s=30.0, multiplier=1.5)
    guarded = compose(policy, backend="slow")(ScriptedBackend([hang()] * 1805, then=ok("ok")))
    learned = policy.bind("slow")
    outcomes = await asyncio.gather(*(guarded() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(o, DeadlineExceeded) for o in outcomes)
    assert learned.limit_s == 1.5  # five timeouts at one limit widen it once
    await asyncio.gather(*(guarded() for _ in range(1800)), return_exceptions=True)
    assert learned.limit_s <= 30.0
    assert await guarded() == "ok"  # a healthy call is attempted and succeeds
    assert learned.limit_s == learned.current_s  # and the widening ends


async def test_running_unbound_options_learns_per_backend() -> None:
    policy = compose(adaptive_deadline(min_samples=1, initial_s=5))
    await policy.run(ScriptedBackend([ok(1, after_s=0.1)]), CallContext("fast"))
    await policy.run(ScriptedBackend([ok(1, after_s=2.0)]), CallContext("slow"))
    assert adaptive_deadline(min_samples=1, initial_s=5).bind("fast").current_s == pytest.approx(
        0.15
    )
    assert adaptive_deadline(min_samples=1, initial_s=5).bind("slow").current_s == pytest.approx(
        3.0
    )
