"""retry(): tenacity's schedule, only transient errors, hints, deadlines, the real error."""

from __future__ import annotations

import asyncio
import random

import pytest
from tenacity import wait_exponential, wait_fixed

from resilience import CircuitOpenError, DeadlineExceeded, TransientError, retry, timeout
from resilience.events import AttemptFailed, RetryGaveUp, RetryScheduled
from resilience.testing import EventCapture, ScriptedBackend, fail, hang, now, ok


async def test_success_on_first_attempt_runs_once_and_reports_nothing() -> None:
    backend = ScriptedBackend([ok("v")])
    with EventCapture() as events:
        assert await retry()(backend)() == "v"
    assert backend.call_count == 1
    assert events.events == []


@pytest.mark.parametrize(
    "error",
    [TimeoutError("t"), ConnectionError("c"), ConnectionResetError("r"), TransientError("x")],
)
async def test_transient_errors_are_retried(error: Exception) -> None:
    backend = ScriptedBackend([fail(error), ok("recovered")])
    assert await retry(wait=wait_fixed(1))(backend)() == "recovered"
    assert backend.call_times == [0.0, 1.0]


@pytest.mark.parametrize(
    "error",
    [TypeError("t"), AttributeError("a"), KeyError("k"), NameError("n"), ValueError("v")],
)
async def test_programming_and_unknown_errors_are_not_retried(error: Exception) -> None:
    backend = ScriptedBackend([fail(error), ok("never")])
    with EventCapture() as events, pytest.raises(type(error)):
        await retry()(backend)()
    assert backend.call_count == 1
    assert events.of(AttemptFailed)[0].retryable is False


async def test_programming_errors_are_never_retried_even_when_declared() -> None:
    backend = ScriptedBackend([fail(AttributeError("dict has no attribute 'rag'")), ok(1)])
    with pytest.raises(AttributeError):
        await retry(retry_on=(Exception,))(backend)()
    assert backend.call_count == 1


async def test_caller_declared_transient_types_and_predicates() -> None:
    class BusyError(Exception):
        pass

    by_type = ScriptedBackend([fail(BusyError()), ok("a")])
    assert await retry(retry_on=(BusyError,), wait=wait_fixed(1))(by_type)() == "a"
    by_predicate = ScriptedBackend([fail(ValueError("busy")), ok("b")])
    predicate = retry(retry_on=lambda e: "busy" in str(e), wait=wait_fixed(1))
    assert await predicate(by_predicate)() == "b"


async def test_gives_up_after_attempts_with_the_last_real_error() -> None:
    errors = [ConnectionError("1"), ConnectionError("2"), ConnectionError("3")]
    backend = ScriptedBackend([fail(e) for e in errors])
    with EventCapture() as events, pytest.raises(ConnectionError) as caught:
        await retry(attempts=3, wait=wait_fixed(1))(backend)()
    assert caught.value is errors[2]
    assert backend.call_count == 3
    assert [e.reason for e in events.of(RetryGaveUp)] == ["attempts"]


async def test_ten_second_backoff_schedule_runs_on_simulated_time() -> None:
    backend = ScriptedBackend([fail(ConnectionError())] * 4 + [ok("up")])
    guarded = retry(attempts=5, wait=wait_exponential(multiplier=1, max=10))(backend)
    with EventCapture() as events:
        assert await guarded() == "up"
    assert [e.delay_s for e in events.of(RetryScheduled)] == [1.0, 2.0, 4.0, 8.0]
    assert backend.call_times == [0.0, 1.0, 3.0, 7.0, 15.0]


async def test_default_schedule_is_full_jitter_exponential_capped() -> None:
    random.seed(7)
    backend = ScriptedBackend([fail(ConnectionError())] * 6 + [ok(1)])
    guarded = retry(attempts=7, initial_delay_s=1, max_delay_s=10)(backend)
    with EventCapture() as events:
        await guarded()
    delays = [e.delay_s for e in events.of(RetryScheduled)]
    windows = [1, 2, 4, 8, 10, 10]
    assert len(delays) == 6
    assert all(0 <= d <= w for d, w in zip(delays, windows, strict=True))
    assert len(set(delays)) == 6  # jittered, not fixed


async def test_total_time_limit_stops_before_a_sleep_would_pass_it() -> None:
    backend = ScriptedBackend([fail(ConnectionError())])
    guarded = retry(attempts=100, total_time_s=10, wait=wait_fixed(3))(backend)
    with EventCapture() as events, pytest.raises(ConnectionError):
        await guarded()
    assert backend.call_times == [0.0, 3.0, 6.0, 9.0]  # a sleep from 9 to 12 would pass 10
    assert now() == 9.0
    assert events.of(RetryGaveUp)[0].reason == "total_time"


async def test_retry_after_hint_replaces_the_computed_delay() -> None:
    backend = ScriptedBackend([fail(TransientError("503", retry_after_s=2.0)), ok("ok")])
    with EventCapture() as events:
        assert await retry(wait=wait_fixed(0.1))(backend)() == "ok"
    assert backend.call_times == [0.0, 2.0]
    assert events.of(RetryScheduled)[0].hinted is True


async def test_a_hint_longer_than_the_caller_would_wait_ends_the_retries() -> None:
    backend = ScriptedBackend([fail(TransientError("503", retry_after_s=86400.0)), ok("late")])
    with EventCapture() as events, pytest.raises(TransientError):
        await retry(max_delay_s=10)(backend)()
    assert backend.call_count == 1
    assert now() == 0.0
    assert events.of(RetryGaveUp)[0].reason == "hint"
    patient = ScriptedBackend([fail(TransientError("503", retry_after_s=60.0)), ok("late")])
    assert await retry(max_delay_s=10, max_hint_s=120)(patient)() == "late"
    assert patient.call_times == [0.0, 60.0]


async def test_cancellation_during_a_call_is_not_retried() -> None:
    backend = ScriptedBackend([hang(), ok("never")])
    task = asyncio.create_task(retry()(backend)())
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.call_count == 1


async def test_cancellation_during_a_backoff_sleep_propagates_and_stops_retrying() -> None:
    backend = ScriptedBackend([fail(ConnectionError()), ok("never")])
    task = asyncio.create_task(retry(wait=wait_fixed(10))(backend)())
    await asyncio.sleep(5)  # inside the 10 s backoff
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(20)
    assert backend.call_count == 1


async def test_per_attempt_timeouts_are_retried() -> None:
    backend = ScriptedBackend([hang(), ok("second")])
    guarded = retry(wait=wait_fixed(1))(timeout(5)(backend))
    assert await guarded() == "second"
    assert backend.call_times == [0.0, 6.0]
    assert backend.cancelled == 1


async def test_open_breaker_rejection_is_not_retried_by_default() -> None:
    async def rejected() -> None:
        raise CircuitOpenError("b", 30.0)

    with pytest.raises(CircuitOpenError):
        await retry()(rejected)()


async def test_deadline_exceeded_after_exhausting_attempts_is_the_last_timeout() -> None:
    backend = ScriptedBackend([hang()])
    with pytest.raises(DeadlineExceeded):
        await retry(attempts=2, wait=wait_fixed(1))(timeout(1)(backend))()
    assert now() == 3.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": 1.5}, "attempts"),
        ({"initial_delay_s": -1}, "initial_delay_s"),
        ({"max_delay_s": float("nan")}, "max_delay_s"),
        ({"total_time_s": 0}, "total_time_s"),
    ],
)
def test_bad_options_fail_when_built(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retry(**kwargs)  # type: ignore[arg-type]


def test_retry_on_must_be_types_or_a_predicate() -> None:
    with pytest.raises(TypeError, match="retry_on"):
        retry(retry_on="ConnectionError")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Exception subclasses"):
        retry(retry_on=(ConnectionError, "TimeoutError"))  # type: ignore[arg-type]
