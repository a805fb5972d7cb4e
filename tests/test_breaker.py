"""circuit_breaker(): aiobreaker's state, admission on the loop clock, bounded half-open."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from resilience import (
    CircuitOpenError,
    ClientError,
    DeadlineExceeded,
    circuit_breaker,
    deadline,
    timeout,
)
from resilience.breaker import Breaker, shared_breaker
from resilience.events import BreakerRejected, BreakerStateChanged
from resilience.testing import EventCapture, ScriptedBackend, fail, hang, now, ok


async def trip(call, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await call()


async def test_consecutive_failures_open_it_and_the_tripping_call_raises_its_own_error() -> None:
    original = ConnectionError("down")
    backend = ScriptedBackend([fail(ConnectionError()), fail(ConnectionError()), fail(original)])
    guarded = circuit_breaker(name="b", failure_threshold=3)(backend)
    await trip(guarded, 2)
    with pytest.raises(ConnectionError) as caught:
        await guarded()
    assert caught.value is original
    with pytest.raises(CircuitOpenError) as rejected:
        await guarded()
    assert rejected.value.retry_after_s == 30.0
    assert backend.call_count == 3


async def test_a_success_resets_the_consecutive_count() -> None:
    backend = ScriptedBackend(
        [fail(ConnectionError()), fail(ConnectionError()), ok(1), fail(ConnectionError()), ok(2)]
    )
    guarded = circuit_breaker(name="b", failure_threshold=3)(backend)
    await trip(guarded, 2)
    await guarded()
    await trip(guarded, 1)
    assert await guarded() == 2
    assert shared_breaker("b", failure_threshold=3).state == "closed"


async def test_thirty_second_reset_then_a_trial_closes_it() -> None:
    backend = ScriptedBackend([fail(ConnectionError())], then=ok("back"))
    guarded = circuit_breaker(name="b", failure_threshold=1, reset_timeout_s=30)(backend)
    with EventCapture() as events:
        await trip(guarded, 1)
        await asyncio.sleep(29.5)
        with pytest.raises(CircuitOpenError) as caught:
            await guarded()
        assert caught.value.retry_after_s == 0.5
        await asyncio.sleep(0.5)
        assert await guarded() == "back"
    transitions = [(e.old, e.new) for e in events.of(BreakerStateChanged)]
    assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert now() == 30.0


async def test_a_failed_trial_reopens_for_another_full_reset_timeout() -> None:
    backend = ScriptedBackend([fail(ConnectionError())])
    guarded = circuit_breaker(name="b", failure_threshold=1, reset_timeout_s=10)(backend)
    await trip(guarded, 1)
    await asyncio.sleep(10)
    await trip(guarded, 1)  # the trial fails: open again from t=10
    with pytest.raises(CircuitOpenError) as caught:
        await guarded()
    assert caught.value.retry_after_s == 10.0


@pytest.mark.parametrize("max_calls", [1, 3])
async def test_hundred_callers_at_the_reset_moment_let_exactly_max_calls_through(
    max_calls: int,
) -> None:
    backend = ScriptedBackend([fail(ConnectionError())], then=ok("ok", after_s=1.0))
    guarded = circuit_breaker(
        name="b", failure_threshold=1, reset_timeout_s=30, half_open_max_calls=max_calls
    )(backend)
    await trip(guarded, 1)
    await asyncio.sleep(30)
    results = await asyncio.gather(*(guarded() for _ in range(100)), return_exceptions=True)
    assert backend.call_count == 1 + max_calls
    assert sum(r == "ok" for r in results) == max_calls
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 100 - max_calls
    assert shared_breaker("b", failure_threshold=1, reset_timeout_s=30,
                          half_open_max_calls=max_calls).state == "closed"  # fmt: skip


async def test_cancelled_trial_gives_its_slot_back_and_is_not_a_failure() -> None:
    backend = ScriptedBackend([fail(ConnectionError()), hang()], then=ok("ok"))
    guarded = circuit_breaker(name="b", failure_threshold=1, reset_timeout_s=5)(backend)
    await trip(guarded, 1)
    await asyncio.sleep(5)
    trial = asyncio.create_task(guarded())
    await asyncio.sleep(1)
    with pytest.raises(CircuitOpenError):  # the one slot is taken
        await guarded()
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert await guarded() == "ok"  # not wedged: the next caller is the trial


async def test_hung_trial_cannot_wedge_it_in_half_open() -> None:
    backend = ScriptedBackend([fail(ConnectionError()), hang()], then=ok("ok"))
    guarded = circuit_breaker(name="b", failure_threshold=1, reset_timeout_s=5)(backend)
    await trip(guarded, 1)
    await asyncio.sleep(5)
    trial = asyncio.create_task(guarded())  # hangs forever, no timeout policy
    await asyncio.sleep(5)
    with pytest.raises(CircuitOpenError) as caught:  # the trial's lease ran out: open again
        await guarded()
    assert caught.value.retry_after_s == 5.0
    await asyncio.sleep(5)
    assert await guarded() == "ok"
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert shared_breaker("b", failure_threshold=1, reset_timeout_s=5).state == "closed"


async def test_saturated_half_open_reports_when_the_trial_lease_ends() -> None:
    backend = ScriptedBackend([fail(ConnectionError()), hang()])
    guarded = circuit_breaker(name="b", failure_threshold=1, reset_timeout_s=5)(backend)
    await trip(guarded, 1)
    await asyncio.sleep(5)
    trial = asyncio.create_task(guarded())
    await asyncio.sleep(2)
    with pytest.raises(CircuitOpenError) as caught:
        await guarded()
    assert caught.value.retry_after_s == 3.0
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial


async def test_cancellation_is_never_counted_as_a_failure() -> None:
    backend = ScriptedBackend([hang()])
    guarded = circuit_breaker(name="b", failure_threshold=1)(backend)
    for _ in range(3):
        task = asyncio.create_task(guarded())
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    breaker = shared_breaker("b", failure_threshold=1)
    assert breaker.state == "closed"
    assert breaker.failure_count == 0


async def test_programming_errors_do_not_open_it() -> None:
    backend = ScriptedBackend([fail(AttributeError("no such method"))])
    guarded = circuit_breaker(name="b", failure_threshold=1)(backend)
    for _ in range(3):
        with pytest.raises(AttributeError):
            await guarded()
    assert shared_breaker("b", failure_threshold=1).state == "closed"


async def test_excluded_errors_are_a_healthy_answer() -> None:
    class NotFoundError(Exception):
        pass

    backend = ScriptedBackend([fail(NotFoundError())])
    guarded = circuit_breaker(name="b", failure_threshold=1, exclude=[NotFoundError])(backend)
    for _ in range(3):
        with pytest.raises(NotFoundError):
            await guarded()
    assert shared_breaker("b", failure_threshold=1, exclude=[NotFoundError]).state == "closed"


async def test_timeouts_count_as_failures() -> None:
    backend = ScriptedBackend([hang()])
    guarded = circuit_breaker(name="b", failure_threshold=2)(timeout(1)(backend))
    for _ in range(2):
        with pytest.raises(TimeoutError):
            await guarded()
    with pytest.raises(CircuitOpenError):
        await guarded()


async def test_breakers_are_shared_by_name() -> None:
    first = ScriptedBackend([fail(ConnectionError())])
    second = ScriptedBackend([ok("never")])
    await trip(circuit_breaker(name="rag", failure_threshold=1)(first), 1)
    with pytest.raises(CircuitOpenError):
        await circuit_breaker(name="rag", failure_threshold=1)(second)()
    assert second.call_count == 0


async def test_unnamed_breakers_are_per_backend() -> None:
    async def rag() -> None:
        raise ConnectionError

    async def tools() -> str:
        return "fine"

    await trip(circuit_breaker(failure_threshold=1)(rag), 1)
    assert await circuit_breaker(failure_threshold=1)(tools)() == "fine"


def test_same_name_with_other_settings_is_an_error() -> None:
    shared_breaker("rag", failure_threshold=5)
    with pytest.raises(ValueError, match="already exists"):
        shared_breaker("rag", failure_threshold=3)


async def test_rejections_are_reported() -> None:
    backend = ScriptedBackend([fail(ConnectionError())])
    guarded = circuit_breaker(name="b", failure_threshold=1, reset_timeout_s=8)(backend)
    await trip(guarded, 1)
    await asyncio.sleep(3)
    with EventCapture() as events, pytest.raises(CircuitOpenError):
        await guarded()
    assert events.of(BreakerRejected) == [BreakerRejected("b", 5.0)]


@pytest.fixture
def new_york_time(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def test_seconds_until_retry_are_right_in_new_york(new_york_time) -> None:
    assert time.strftime("%Z") in {"EST", "EDT"}
    assert os.environ["TZ"] == "America/New_York"
    backend = ScriptedBackend([fail(ConnectionError())])
    guarded = circuit_breaker(name="b", failure_threshold=1, reset_timeout_s=30)(backend)
    await trip(guarded, 1)
    await asyncio.sleep(12)
    with pytest.raises(CircuitOpenError) as caught:
        await guarded()
    assert caught.value.retry_after_s == 18.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"reset_timeout_s": -1}, "reset_timeout_s"),
        ({"reset_timeout_s": float("inf")}, "reset_timeout_s"),
    ],
)
def test_bad_options_fail_when_built(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        circuit_breaker(**kwargs)  # type: ignore[arg-type]


def test_unbound_policy_has_no_breaker_yet() -> None:
    with pytest.raises(RuntimeError, match="bound"):
        _ = circuit_breaker().breaker


def test_stale_outcomes_after_a_transition_are_ignored() -> None:
    breaker = Breaker("b", failure_threshold=1, reset_timeout_s=10)
    closed_ticket = breaker.admit(0.0)
    late_ticket = breaker.admit(0.0)
    breaker.record_failure(closed_ticket, ConnectionError(), 1.0)
    assert breaker.state == "open"
    breaker.record_success(late_ticket)  # started before it opened: says nothing now
    assert breaker.state == "open"


async def test_a_caller_out_of_budget_is_not_a_backend_failure() -> None:
    backend = ScriptedBackend([ok("slow but fine", after_s=0.2)])
    guarded = circuit_breaker(name="db", failure_threshold=1)(timeout(1)(backend))

    async def late_caller(delay: float) -> object:
        await asyncio.sleep(delay)  # a task that inherited a budget with little left
        return await guarded()

    for delay in (0.9, 1.5):  # 0.1 s left for a 0.2 s call; then none left at all
        async with deadline(1):
            task = asyncio.create_task(late_caller(delay))
        with pytest.raises(DeadlineExceeded) as caught:
            await task
        assert caught.value.budget is True
    assert shared_breaker("db", failure_threshold=1).state == "closed"
    assert await guarded() == "slow but fine"


async def test_client_errors_are_the_backend_answering_not_failing() -> None:
    class BadRequestError(ClientError):
        pass

    backend = ScriptedBackend([fail(BadRequestError())])
    guarded = circuit_breaker(name="b", failure_threshold=1)(backend)
    for _ in range(3):
        with pytest.raises(BadRequestError):
            await guarded()
    assert shared_breaker("b", failure_threshold=1).state == "closed"
