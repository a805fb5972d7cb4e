"""Events: stable names, frozen payloads, one hub; a failing observer changes nothing."""

from __future__ import annotations

import dataclasses

import pytest
import structlog
from tenacity import wait_fixed

from resilience import add_observer, circuit_breaker, remove_observer, retry, safe_default
from resilience import events as ev
from resilience.testing import EventCapture, ScriptedBackend, fail, ok

#: The backend name a ScriptedBackend gets when nothing names it.
SCRIPTED = "resilience.testing.faults.ScriptedBackend"


def test_event_names_are_stable() -> None:
    own = [cls for cls in ev.Event.__subclasses__() if cls.__module__ == ev.__name__]
    assert {cls.name for cls in own} == {
        "resilience.attempt_failed",
        "resilience.retry_scheduled",
        "resilience.retry_gave_up",
        "resilience.timed_out",
        "resilience.breaker_state_changed",
        "resilience.breaker_rejected",
        "resilience.fell_back",
        "resilience.adaptive_deadline_moved",
        "resilience.queue_rejected",
        "resilience.tier_started",
        "resilience.tier_finished",
    }


def test_payloads_are_frozen() -> None:
    event = ev.RetryScheduled("rag", 1, 0.5, "ConnectionError", hinted=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.delay_s = 0  # type: ignore[misc]
    assert event.fields() == {
        "backend": "rag",
        "attempt": 1,
        "delay_s": 0.5,
        "error_type": "ConnectionError",
        "hinted": False,
    }


async def test_a_raising_observer_never_changes_the_outcome() -> None:
    def broken(event: ev.Event) -> None:
        raise RuntimeError("metrics backend down")

    add_observer(broken)
    try:
        backend = ScriptedBackend([fail(ConnectionError()), ok("fine")])
        with structlog.testing.capture_logs() as logs:
            assert await retry(wait=wait_fixed(1))(backend)() == "fine"
    finally:
        remove_observer(broken)
    assert ev.OBSERVER_FAILED in [line["event"] for line in logs]


async def test_default_observer_logs_with_structlog() -> None:
    backend = ScriptedBackend([fail(ConnectionError())])
    with structlog.testing.capture_logs() as logs:
        await safe_default(None)(backend)()
    fell_back = [line for line in logs if line["event"] == ev.FELL_BACK]
    assert fell_back == [
        {
            "event": ev.FELL_BACK,
            "log_level": "warning",
            "backend": SCRIPTED,
            "error_type": "ConnectionError",
            "programming_error": False,
        }
    ]


async def test_hidden_bugs_are_logged_at_error_level() -> None:
    backend = ScriptedBackend([fail(AttributeError("x"))])
    with structlog.testing.capture_logs() as logs:
        await safe_default(None)(backend)()
    assert [line["log_level"] for line in logs if line["event"] == ev.FELL_BACK] == ["error"]


async def test_events_follow_the_call_in_order() -> None:
    backend = ScriptedBackend([fail(ConnectionError()), fail(ConnectionError())])
    with EventCapture() as events:
        await safe_default(None)(retry(attempts=2, wait=wait_fixed(1))(backend))()
    assert events.names() == [
        ev.ATTEMPT_FAILED,
        ev.RETRY_SCHEDULED,
        ev.ATTEMPT_FAILED,
        ev.RETRY_GAVE_UP,
        ev.FELL_BACK,
    ]


async def test_calls_turned_away_by_an_open_breaker_reach_observers_but_not_the_log() -> None:
    backend = ScriptedBackend([fail(ConnectionError())])
    guarded = safe_default(None)(circuit_breaker(name="quiet", failure_threshold=1)(backend))
    with structlog.testing.capture_logs() as logs, EventCapture() as events:
        for _ in range(5):
            await guarded()
    logged = [line["event"] for line in logs]
    assert logged.count(ev.BREAKER_STATE_CHANGED) == 1
    assert logged.count(ev.FELL_BACK) == 1  # the failure that opened it, not the rejections
    assert ev.BREAKER_REJECTED not in logged
    assert events.names().count(ev.BREAKER_REJECTED) == 4
    assert events.names().count(ev.FELL_BACK) == 5
