"""Tier progress: ``on_event`` and ``Tier.stream`` report each task as it happens."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from resilience import compose
from resilience.bulkhead import reset_bulkheads
from resilience.events import TierFinished, TierStarted
from resilience.testing import ScriptedBackend, fail, hang, now, ok
from resilience.tiers import (
    Task,
    TaskFailed,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
    TaskTimedOut,
    Tier,
)

NO_POLICY = compose()


def tier(rag, tools, memory, **options) -> Tier:
    return Tier(
        "retrieval",
        [
            Task("rag_context", rag, default=list, backend="rag", policy=NO_POLICY),
            Task("tool_results", tools, default=dict, backend="tools", policy=NO_POLICY),
            Task("memories", memory, default=list, backend="memory", policy=NO_POLICY),
        ],
        timeout_s=2.0,
        **options,
    )


def mixed():
    return (
        ScriptedBackend([ok(["doc"], after_s=0.1)]),
        ScriptedBackend([fail(ConnectionError(), after_s=0.05)]),
        ScriptedBackend([hang()]),
    )


EXPECTED = [
    (0.0, TierStarted("retrieval", "parallel", ("rag_context", "tool_results", "memories"))),
    (0.0, TaskStarted("rag", "retrieval", "rag_context")),
    (0.0, TaskStarted("tools", "retrieval", "tool_results")),
    (0.0, TaskStarted("memory", "retrieval", "memories")),
    (0.05, TaskFailed("tools", "retrieval", "tool_results", "failed", 0.05, 1, "ConnectionError")),
    (0.1, TaskSucceeded("rag", "retrieval", "rag_context", 0.1, 1)),
    (2.0, TaskTimedOut("memory", "retrieval", "memories", 2.0)),
    (2.0, TierFinished("retrieval", "parallel", 2.0, succeeded=1, failed=2, skipped=0)),
]


def _running_tasks() -> list[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return [task for task in asyncio.all_tasks() if task is not current and not task.done()]


async def test_on_event_reports_each_task_as_it_happens() -> None:
    seen = []
    state: dict[str, Any] = {"query": "q"}
    await tier(*mixed()).run(state, on_event=lambda event: seen.append((now(), event)))
    assert seen == EXPECTED


async def test_stream_yields_the_same_events_then_the_state_is_written() -> None:
    state: dict[str, Any] = {"query": "q"}
    seen = []
    async with tier(*mixed()).stream(state) as progress:
        async for event in progress:
            seen.append((now(), event))
            if isinstance(event, TierFinished):
                assert state["rag_context"] == ["doc"]  # written before the final event
    assert seen == EXPECTED
    assert state["metadata"]["retrieval"]["failed"] == 2


async def test_sequential_progress_follows_the_order_of_the_tasks() -> None:
    rag, tools, memory = (ScriptedBackend([ok(n, after_s=1.0)]) for n in range(3))
    names = []
    await tier(rag, tools, memory, parallel=False).run(
        {}, on_event=lambda event: names.append((now(), type(event).__name__))
    )
    assert names == [
        (0.0, "TierStarted"),
        (0.0, "TaskStarted"),
        (1.0, "TaskSucceeded"),
        (1.0, "TaskStarted"),
        (2.0, "TaskTimedOut"),
        (2.0, "TaskTimedOut"),  # never started: cut by the same timeout
        (2.0, "TierFinished"),
    ]


async def test_skipped_tasks_are_reported() -> None:
    seen = []
    backend = ScriptedBackend([ok(1)])
    skipper = Tier("t", [Task("a", backend, enabled="enable_a", policy=NO_POLICY)])
    await skipper.run({"enable_a": False}, on_event=seen.append)
    assert seen[1] == TaskSkipped("a", "t", "a")


async def test_fallback_is_reported_as_a_failure_with_its_status(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_BACKENDS__DB__MAX_CONCURRENCY", "1")
    monkeypatch.setenv("RESILIENCE_BACKENDS__DB__QUEUE_SIZE", "0")
    monkeypatch.setenv("RESILIENCE_BACKENDS__DB__RETRY_ATTEMPTS", "1")
    reset_bulkheads()
    db = ScriptedBackend([ok(1, after_s=1.0)])
    seen = []
    limited = Tier("t", [Task("a", db, backend="db"), Task("b", db, backend="db")])
    await limited.run({}, on_event=seen.append)
    reset_bulkheads()
    assert TaskFailed("db", "t", "b", "fallback", 0.0, 1, "QueueFullError") in seen


async def test_breaking_out_of_a_closed_stream_cancels_and_awaits_the_rest() -> None:
    rag, tools, memory = mixed()
    state: dict[str, Any] = {"query": "q"}
    async with tier(rag, tools, memory).stream(state) as progress:
        async for event in progress:
            if isinstance(event, TaskSucceeded):
                break
    assert now() == 0.1
    assert (memory.running, memory.cancelled) == (0, 1)
    assert _running_tasks() == []
    assert state == {"query": "q"}  # a cancelled run writes nothing


async def test_aclose_stops_the_run() -> None:
    rag, tools, memory = mixed()
    state: dict[str, Any] = {}
    progress = tier(rag, tools, memory).stream(state)
    while (await anext(progress)) != TaskStarted("memory", "retrieval", "memories"):
        pass
    await asyncio.sleep(0.5)
    await progress.aclose()
    assert _running_tasks() == []
    assert (memory.running, memory.cancelled) == (0, 1)
    assert state == {}
    with pytest.raises(StopAsyncIteration):
        await anext(progress)


async def test_an_abandoned_stream_is_cancelled_when_the_loop_finalizes_it() -> None:
    rag, tools, memory = mixed()
    async for _ in tier(rag, tools, memory).stream({}):
        break
    gc.collect()
    await asyncio.sleep(0.01)  # the loop closes the abandoned iterator in a task of its own
    assert (memory.running, memory.cancelled) == (0, 1)
    assert _running_tasks() == []


async def test_cancelling_the_consumer_cancels_the_run() -> None:
    rag, tools, memory = mixed()

    async def consume() -> None:
        async with tier(rag, tools, memory).stream({}) as progress:
            async for _ in progress:
                pass

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(1.0)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert (memory.running, memory.cancelled) == (0, 1)
    assert _running_tasks() == []


async def test_an_error_of_the_tier_itself_is_raised_from_the_iteration() -> None:
    def no_default() -> list[str]:
        raise RuntimeError("broken factory")

    broken = Tier("t", [Task("a", ScriptedBackend([fail(ConnectionError())]), default=no_default)])
    state: dict[str, Any] = {}

    async def consume() -> None:
        async with broken.stream(state) as progress:
            async for _ in progress:
                pass

    with pytest.raises(Exception, match="safe default factory"):
        await consume()
    assert state == {}


def test_stream_checks_the_state_when_called() -> None:
    with pytest.raises(TypeError, match="dict"):
        tier(*mixed()).stream("not a dict")  # type: ignore[type-var]


async def test_a_callback_that_raises_never_changes_the_run() -> None:
    def broken(event) -> None:
        raise RuntimeError("websocket closed")

    state = await tier(*mixed()).run({}, on_event=broken)
    assert state["rag_context"] == ["doc"]
    assert state["metadata"]["retrieval"]["succeeded"] == 1


def test_progress_event_names_are_stable() -> None:
    assert [
        kind.name for kind in (TaskStarted, TaskSucceeded, TaskFailed, TaskTimedOut, TaskSkipped)
    ] == [
        "resilience.task_started",
        "resilience.task_succeeded",
        "resilience.task_failed",
        "resilience.task_timed_out",
        "resilience.task_skipped",
    ]
