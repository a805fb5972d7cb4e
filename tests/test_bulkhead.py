"""bulkhead(): a backend's concurrency limit with a bounded priority queue in front of it."""

from __future__ import annotations

import asyncio

import pytest

from resilience import QueueFullError, ResilienceSettings, compose, policy_for, safe_default
from resilience.bulkhead import (
    Bulkhead,
    BulkheadPolicy,
    bulkhead,
    priority,
    priority_var,
    reset_bulkheads,
    shared_bulkhead,
)
from resilience.configured import build_pipeline
from resilience.events import QueueRejected
from resilience.settings import PolicySettings
from resilience.testing import EventCapture, ScriptedBackend, hang, now, ok


@pytest.fixture(autouse=True)
def _fresh_bulkheads():
    reset_bulkheads()
    yield
    reset_bulkheads()


def _limited(backend, limit=1, **options):
    return bulkhead(limit, name="llm", **options)(backend)


async def test_no_more_calls_run_at_once_than_the_limit() -> None:
    backend = ScriptedBackend([ok("answer", after_s=1.0)])
    guarded = _limited(backend, limit=2)
    results = await asyncio.gather(*(guarded(i) for i in range(5)))
    assert results == ["answer"] * 5
    assert backend.call_times == [0.0, 0.0, 1.0, 1.0, 2.0]
    assert now() == 3.0


async def test_waiting_calls_start_highest_priority_first() -> None:
    backend = ScriptedBackend([ok(after_s=1.0)])
    guarded = _limited(backend)
    holder = asyncio.create_task(guarded("holder"))
    await asyncio.sleep(0)
    queued = []
    for level in (0, 5, 1, 9):
        with priority(level):  # the task copies the context, priority included
            queued.append(asyncio.create_task(guarded(level)))
    await asyncio.gather(holder, *queued)
    started = [args[0] for _, args, _ in backend.calls]
    assert started == ["holder", 9, 5, 1, 0]
    assert backend.call_times == [0.0, 1.0, 2.0, 3.0, 4.0]


async def test_first_come_first_served_within_a_priority() -> None:
    backend = ScriptedBackend([ok(after_s=1.0)])
    guarded = _limited(backend)
    holder = asyncio.create_task(guarded("holder"))
    await asyncio.sleep(0)
    with priority(3):
        queued = [asyncio.create_task(guarded(name)) for name in ("a", "b", "c")]
    await asyncio.gather(holder, *queued)
    assert [args[0] for _, args, _ in backend.calls] == ["holder", "a", "b", "c"]


async def test_a_full_queue_rejects_at_once_with_a_clear_error() -> None:
    backend = ScriptedBackend([hang()])
    guarded = _limited(backend, queue_size=1)
    running = asyncio.create_task(guarded("running"))
    waiting = asyncio.create_task(guarded("waiting"))
    await asyncio.sleep(0)
    with (
        EventCapture() as events,
        pytest.raises(QueueFullError, match="1 calls running and 1 queued") as info,
    ):
        await guarded("rejected")
    assert now() == 0.0
    assert info.value.backend == "llm"
    assert events.of(QueueRejected) == [QueueRejected("llm", "queue_full")]
    assert backend.call_count == 1
    for task in (running, waiting):
        task.cancel()
    await asyncio.gather(running, waiting, return_exceptions=True)


async def test_a_zero_queue_rejects_whenever_every_slot_is_busy() -> None:
    backend = ScriptedBackend([ok(after_s=1.0)])
    guarded = _limited(backend, queue_size=0)
    first = asyncio.create_task(guarded())
    await asyncio.sleep(0)
    with pytest.raises(QueueFullError):
        await guarded()
    await first
    assert await guarded() is None  # the slot came back


async def test_waiting_longer_than_the_queue_timeout_is_rejected() -> None:
    backend = ScriptedBackend([ok(after_s=10.0)])
    guarded = _limited(backend, queue_timeout_s=2.0)
    holder = asyncio.create_task(guarded())
    await asyncio.sleep(0)
    with EventCapture() as events, pytest.raises(QueueFullError, match="no slot within 2 s"):
        await guarded()
    assert now() == 2.0
    assert events.of(QueueRejected) == [QueueRejected("llm", "queue_timeout")]
    await holder
    assert shared_bulkhead("llm", max_concurrency=1, queue_timeout_s=2.0).active == 0


async def test_a_cancelled_waiter_leaves_the_queue_and_takes_no_slot() -> None:
    backend = ScriptedBackend([ok(after_s=1.0)])
    guarded = _limited(backend)
    holder = asyncio.create_task(guarded("holder"))
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(guarded("cancelled"))
    later = asyncio.create_task(guarded("later"))
    await asyncio.sleep(0.5)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.gather(holder, later)
    assert [args[0] for _, args, _ in backend.calls] == ["holder", "later"]
    assert backend.call_times == [0.0, 1.0]


async def test_a_slot_granted_to_a_waiter_cancelled_before_it_resumes_is_handed_on() -> None:
    limit = Bulkhead("db", max_concurrency=1)
    await limit.acquire()
    first = asyncio.create_task(limit.acquire())
    second = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0)
    assert limit.waiting == 2
    limit.release()  # the slot goes to ``first``...
    first.cancel()  # ...which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await first
    await second  # so the slot passed on to ``second``
    assert (limit.active, limit.waiting) == (1, 0)
    limit.release()
    assert limit.active == 0


async def test_the_slot_is_released_when_the_call_fails() -> None:
    calls = []

    async def failing() -> None:
        calls.append(now())
        raise ConnectionError

    guarded = bulkhead(1, name="db")(failing)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await guarded()
    assert shared_bulkhead("db", max_concurrency=1).active == 0


async def test_bulkheads_are_shared_by_name_across_pipelines() -> None:
    backend = ScriptedBackend([ok(after_s=1.0)])
    one = bulkhead(1, name="llm")(backend)
    other = compose(bulkhead(1), backend="llm")(backend)
    await asyncio.gather(one(), other())
    assert backend.call_times == [0.0, 1.0]


def test_one_name_cannot_have_two_limits() -> None:
    shared_bulkhead("llm", max_concurrency=1)
    with pytest.raises(ValueError, match="already exists"):
        shared_bulkhead("llm", max_concurrency=2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"max_concurrency": 1, "queue_size": -1}, "queue_size"),
        ({"max_concurrency": 1, "queue_timeout_s": 0}, "queue_timeout_s"),
        ({"max_concurrency": 1, "queue_timeout_s": float("inf")}, "queue_timeout_s"),
    ],
)
def test_bad_options_fail_when_the_policy_is_built(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        bulkhead(**options)


def test_priority_must_be_an_int() -> None:
    with pytest.raises(TypeError, match="priority"), priority("high"):  # type: ignore[arg-type]
        pass


def test_priority_is_restored_after_the_block() -> None:
    with priority(7):
        assert priority_var.get() == 7
    assert priority_var.get() == 0


def test_an_unbound_policy_has_no_bulkhead_yet() -> None:
    with pytest.raises(RuntimeError, match="bound"):
        _ = bulkhead(1).bulkhead


def test_build_pipeline_puts_the_bulkhead_outermost_when_a_limit_is_set() -> None:
    limited = build_pipeline("llm", PolicySettings(max_concurrency=2, queue_size=3))
    assert isinstance(limited.policies[0], BulkheadPolicy)
    assert limited.policies[0].bulkhead.settings == (2, 3, 5.0)
    unlimited = build_pipeline("rag", PolicySettings())
    assert not any(isinstance(policy, BulkheadPolicy) for policy in unlimited.policies)


async def test_the_environment_sets_a_backends_limit(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_BACKENDS__LLM__MAX_CONCURRENCY", "1")
    monkeypatch.setenv("RESILIENCE_BACKENDS__LLM__QUEUE_SIZE", "0")
    pipeline = policy_for("llm", settings=ResilienceSettings())
    backend = ScriptedBackend([ok(after_s=1.0)])
    guarded = pipeline(backend)
    first = asyncio.create_task(guarded())
    await asyncio.sleep(0)
    with pytest.raises(QueueFullError):
        await guarded()
    await first


async def test_cancellation_while_holding_a_slot_releases_it() -> None:
    backend = ScriptedBackend([hang(), ok("next")])
    guarded = _limited(backend)
    stuck = asyncio.create_task(guarded())
    await asyncio.sleep(1)
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert await guarded() == "next"


async def test_a_caller_cancelling_at_the_queue_timeout_stays_cancelled() -> None:
    backend = ScriptedBackend([hang()])
    call = safe_default("DEFAULT")(
        bulkhead(1, queue_size=5, queue_timeout_s=1.0, name="bh")(backend)
    )
    holder = asyncio.create_task(call())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(call())
    await asyncio.sleep(0)
    asyncio.get_running_loop().call_at(1.0, waiter.cancel)  # the same instant as the timeout
    with pytest.raises(asyncio.CancelledError):
        await waiter
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
