"""timeout(): per-attempt limits on the loop clock, cancellation kept apart from expiry."""

from __future__ import annotations

import asyncio

import pytest

from resilience import DeadlineExceeded, ResilienceError, deadline, safe_default, timeout
from resilience.events import TimedOut
from resilience.testing import EventCapture, ScriptedBackend, hang, now, ok

#: The backend name a ScriptedBackend gets when nothing names it.
SCRIPTED = "resilience.testing.faults.ScriptedBackend"


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
    assert caught.value.backend == SCRIPTED
    assert "5 s" in str(caught.value)
    assert events.of(TimedOut) == [TimedOut(SCRIPTED, 1, 5.0, budget=False)]


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


async def test_work_that_turns_cancellation_into_another_error_is_still_a_timeout() -> None:
    async def converts() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise ConnectionError("closed while reading") from None

    with pytest.raises(DeadlineExceeded) as caught:
        await timeout(1)(converts)()
    assert isinstance(caught.value.__cause__, ConnectionError)


async def test_no_cancellation_request_is_left_on_the_task() -> None:
    task = asyncio.current_task()
    assert task is not None
    with pytest.raises(DeadlineExceeded):
        await timeout(1)(ScriptedBackend([hang()]))()
    assert task.cancelling() == 0
    await asyncio.sleep(1)  # a leftover request would cancel this sleep
    async with asyncio.timeout(5):  # and would confuse asyncio's own timeouts
        await asyncio.sleep(1)
    assert now() == 3.0


async def test_nested_timeouts_report_the_inner_one_when_it_is_tighter() -> None:
    inner = timeout(1)(ScriptedBackend([hang()]))
    with pytest.raises(DeadlineExceeded) as caught:
        await timeout(5)(inner)()
    assert caught.value.limit_s == 1.0
    assert now() == 1.0


async def test_an_outer_timeout_cuts_a_looser_inner_one() -> None:
    inner = timeout(5)(ScriptedBackend([hang()]))
    outer = timeout(2)(inner)
    with pytest.raises(DeadlineExceeded) as caught:
        await outer()
    assert caught.value.limit_s == 2.0
    assert now() == 2.0


def test_a_timeout_needs_a_task() -> None:
    async def fast() -> int:
        return 1

    errors: list[BaseException] = []

    def step_outside_a_task() -> None:  # a loop callback: a running loop, no task
        coro = timeout(1)(fast)()
        try:
            coro.send(None)
        except RuntimeError as exc:
            errors.append(exc)
        loop.stop()

    loop = asyncio.new_event_loop()
    try:
        loop.call_soon(step_outside_a_task)
        loop.run_forever()
    finally:
        loop.close()
    assert len(errors) == 1
    assert "inside an asyncio task" in str(errors[0])


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5", True])
def test_bad_limits_are_rejected_when_built(bad: object) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive finite number"):
        timeout(bad)  # type: ignore[arg-type]


async def test_concurrent_attempts_share_one_timer_and_each_ends_on_time() -> None:
    guarded = timeout(2)(ScriptedBackend([ok("fast", after_s=1.0), hang(), hang()]))
    ended: dict[str, float] = {}

    async def call(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await guarded()
        except DeadlineExceeded:
            ended[name] = now()
        else:
            ended[name] = -now()

    await asyncio.gather(call("first", 0.0), call("second", 0.5), call("third", 1.0))
    assert ended == {"first": -1.0, "second": 2.5, "third": 3.0}


async def test_an_attempt_bound_by_a_budget_keeps_its_own_timer_among_shared_ones() -> None:
    guarded = timeout(2)(ScriptedBackend([hang()]))
    ended: dict[str, tuple[float, bool]] = {}

    async def call(name: str) -> None:
        try:
            await guarded()
        except DeadlineExceeded as exc:
            ended[name] = (now(), exc.budget)

    plain = asyncio.create_task(call("plain"))
    async with deadline(0.5):
        budgeted = asyncio.create_task(call("budgeted"))  # inherits the 0.5 s budget
    await asyncio.gather(plain, budgeted)
    assert ended == {"budgeted": (0.5, True), "plain": (2.0, False)}


async def test_a_caller_cancelling_while_timed_out_work_unwinds_stays_cancelled() -> None:
    async def slow_cleanup() -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)  # still cleaning up when the caller gives up
            return "partial"
        return "never"

    guarded = safe_default("DEFAULT")(timeout(1)(slow_cleanup))
    task = asyncio.create_task(guarded())
    asyncio.get_running_loop().call_at(1.2, task.cancel)
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_caller_cancelling_while_the_work_turns_cancellation_into_an_error() -> None:
    async def converts() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)
            raise ConnectionError("closed") from None

    task = asyncio.create_task(safe_default("DEFAULT")(timeout(1)(converts))())
    asyncio.get_running_loop().call_at(1.2, task.cancel)
    with pytest.raises(asyncio.CancelledError):
        await task
