"""deadline(): a total budget that nested calls inherit; the tightest budget wins."""

from __future__ import annotations

import asyncio

import pytest
from tenacity import wait_exponential

from resilience import DeadlineExceeded, deadline, retry, safe_default, timeout
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


async def test_the_block_cuts_an_attempt_bound_by_its_budget_and_everything_after() -> None:
    backend = ScriptedBackend([hang()])
    reached: list[str] = []

    async def block() -> None:
        async with deadline(2):
            await safe_default("default")(timeout(5)(backend))()  # no default: cancelled
            reached.append("after the call")
            await asyncio.sleep(10)

    with pytest.raises(DeadlineExceeded) as caught:
        await block()
    assert now() == 2.0
    assert reached == []
    assert caught.value.budget is True
    assert caught.value.backend is None
    assert "a deadline block exceeded its deadline budget of 2 s" in str(caught.value)
    assert backend.cancelled == 1


@pytest.mark.parametrize("seconds", [0.999, 1.0, 1.001])
async def test_the_block_wins_whether_its_budget_ends_before_with_or_after_the_timeout(
    seconds: float,
) -> None:
    backend = ScriptedBackend([hang()])

    async def block() -> None:
        async with deadline(seconds):
            await timeout(1)(backend)()
            await asyncio.sleep(10)

    with pytest.raises(DeadlineExceeded) as caught:
        await block()
    if seconds > 1:  # the attempt's own limit came first; its error leaves the block
        assert caught.value.backend == "resilience.testing.faults.ScriptedBackend"
        assert now() == 1.0
    else:
        assert caught.value.backend is None
        assert now() == seconds


async def test_a_task_started_inside_is_cut_at_the_budget_by_its_own_timeout() -> None:
    backend = ScriptedBackend([hang()])

    async def child() -> object:
        return await timeout(5)(backend)()

    with EventCapture() as events:
        async with deadline(2):
            task = asyncio.create_task(child())
        with pytest.raises(DeadlineExceeded) as caught:
            await task
    assert caught.value.budget is True
    assert now() == 2.0
    assert events.of(TimedOut)[0].budget is True


async def test_nested_blocks_report_the_tighter_budget() -> None:
    with pytest.raises(DeadlineExceeded) as caught:
        async with deadline(0.5), deadline(5):
            await asyncio.sleep(10)
    assert now() == 0.5
    assert caught.value.limit_s == 0.5


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
