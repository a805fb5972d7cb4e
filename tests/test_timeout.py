"""timeout(): per-attempt limits on the loop clock, cancellation kept apart from expiry."""

from __future__ import annotations

import asyncio

import pytest

from resilience import DeadlineExceeded, ResilienceError, timeout
from resilience.events import TimedOut
from resilience.testing import EventCapture, ScriptedBackend, hang, now, ok


async def test_fast_call_returns_its_result() -> None:
    backend = ScriptedBackend([ok("done", after_s=4.999)])
    assert await timeout(5)(backend)() == "done"
    assert now() == pytest.approx(4.999, abs=1e-9)


async def test_slow_call_raises_deadline_exceeded_at_exactly_the_limit() -> None:
    backend = ScriptedBackend([hang()])
    guarded = timeout(5)(backend)
    with EventCapture() as events, pytest.raises(DeadlineExceeded) as caught:
        await guarded()
    assert now() == 5.0
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, ResilienceError)
    assert caught.value.limit_s == 5.0
    assert caught.value.backend == "ScriptedBackend"
    assert "5 s" in str(caught.value)
    assert events.of(TimedOut) == [TimedOut("ScriptedBackend", 1, 5.0, budget=False)]


async def test_timed_out_work_is_cancelled_and_awaited_before_the_error() -> None:
    cleaned_up_at: list[float] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.5)  # cleanup that takes time still finishes first
            cleaned_up_at.append(now())

    with pytest.raises(DeadlineExceeded):
        await timeout(2)(slow)()
    assert cleaned_up_at == [2.5]
    assert now() == 2.5


async def test_outside_cancellation_stays_a_cancellation() -> None:
    backend = ScriptedBackend([hang()])
    task = asyncio.create_task(timeout(5)(backend)())
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.cancelled == 1
    assert now() == 1.0


async def test_outside_cancellation_at_the_same_instant_as_expiry_stays_a_cancellation() -> None:
    backend = ScriptedBackend([hang()])
    task = asyncio.create_task(timeout(5)(backend)())
    loop = asyncio.get_running_loop()
    loop.call_at(5.0, task.cancel)  # scheduled before the timeout's own timer fires
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_backends_own_timeout_error_is_not_renamed() -> None:
    async def raises_own() -> None:
        raise TimeoutError("backend said so")

    with pytest.raises(TimeoutError, match="backend said so") as caught:
        await timeout(5)(raises_own)()
    assert not isinstance(caught.value, DeadlineExceeded)


async def test_work_that_swallows_cancellation_is_still_a_timeout_not_a_success() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            return "pretends to be fine"
        return "unreachable"

    with pytest.raises(DeadlineExceeded):
        await timeout(1)(stubborn)()


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5", True])
def test_bad_limits_are_rejected_when_built(bad: object) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive finite number"):
        timeout(bad)  # type: ignore[arg-type]
