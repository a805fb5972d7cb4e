"""deadline(): a total budget that nested calls inherit; the tightest budget wins."""

from __future__ import annotations

import asyncio

import pytest
from tenacity import wait_exponential

from resilience import DeadlineExceeded, deadline, retry, timeout
from resilience.deadline import current_deadline, remaining
from resilience.events import RetryGaveUp, TimedOut
from resilience.testing import EventCapture, ScriptedBackend, fail, hang, now, ok


async def test_budget_is_visible_inside_and_gone_after() -> None:
    assert current_deadline() is None
    assert remaining() is None
    async with deadline(10) as scope:
        assert current_deadline() == 10.0
        assert scope.expires_at == 10.0
        await asyncio.sleep(4)
        assert remaining() == 6.0
    assert current_deadline() is None


async def test_nested_budgets_take_the_tightest() -> None:
    async with deadline(10):
        async with deadline(30):
            assert current_deadline() == 10.0
        async with deadline(3):
            assert current_deadline() == 3.0
        assert current_deadline() == 10.0


async def test_attempt_gets_the_smaller_of_its_limit_and_the_remaining_budget() -> None:
    backend = ScriptedBackend([hang()])
    with EventCapture() as events:
        async with deadline(2):
            with pytest.raises(DeadlineExceeded) as caught:
                await timeout(5)(backend)()
    assert now() == 2.0
    assert caught.value.budget is True
    assert events.of(TimedOut)[0].budget is True


async def test_block_that_overruns_raises_deadline_exceeded() -> None:
    with pytest.raises(DeadlineExceeded) as caught:
        async with deadline(3):
            await asyncio.sleep(10)
    assert now() == 3.0
    assert isinstance(caught.value, TimeoutError)


async def test_tasks_started_inside_inherit_the_budget() -> None:
    seen: list[float | None] = []

    async def child() -> None:
        seen.append(current_deadline())

    async with deadline(7):
        await asyncio.gather(child(), child())
    assert seen == [7.0, 7.0]


async def test_outside_cancellation_of_a_deadline_block_stays_a_cancellation() -> None:
    async def body() -> None:
        async with deadline(5):
            await asyncio.sleep(60)

    task = asyncio.create_task(body())
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_exhausted_budget_starts_no_attempt() -> None:
    backend = ScriptedBackend([ok(1)])

    async def late_call() -> int:
        await asyncio.sleep(2)  # a task that outlives the block but inherited its budget
        return await timeout(5)(backend)()

    async with deadline(1):
        task = asyncio.create_task(late_call())
    with pytest.raises(DeadlineExceeded) as caught:
        await task
    assert caught.value.budget is True
    assert backend.call_count == 0
    assert now() == 2.0


async def test_retry_inside_deadline_never_starts_an_attempt_or_sleeps_past_it() -> None:
    # Backoff of exactly 1, 2, 4, 8 ... s; each attempt fails after 0.5 s.
    backend = ScriptedBackend([fail(ConnectionError("down"), after_s=0.5)])
    guarded = retry(attempts=10, wait=wait_exponential(multiplier=1, max=60))(backend)
    with EventCapture() as events:
        async with deadline(6):
            with pytest.raises(ConnectionError):
                await guarded()
    # attempts start at 0, 1.5 (0.5 + 1), 4.0 (2.0 + 2); the next backoff (4 s from
    # 4.5) would end at 8.5 > 6, so the retry gives up at 4.5 without sleeping.
    assert backend.call_times == [0.0, 1.5, 4.0]
    assert now() == 4.5
    assert all(start < 6 for start in backend.call_times)
    assert events.of(RetryGaveUp)[-1].reason == "deadline"


@pytest.mark.parametrize("bad", [0, -2, float("nan"), float("inf")])
def test_bad_budgets_are_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="positive finite"):
        deadline(bad)


async def test_expires_at_before_entering_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not been entered"):
        _ = deadline(1).expires_at
