"""Tier: parallel backend calls with fault isolation that keep the workflow's state shape.

The first twelve tests replay the original workflow's audit scenarios against ``Tier``:
tier 1 (retrieval) runs RAG, tools and memory search; tier 2 (post-generation) saves to
memory, pushes the final stream event and records citations and usage. Every backend
goes through the policies the environment configures (retries off here, so simulated
times are exact).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from types import MappingProxyType
from typing import Any, TypedDict

import pytest

from resilience import ConfigurationError, ResilienceSettings, compose
from resilience.bulkhead import reset_bulkheads
from resilience.events import FellBack, TierFinished, TierStarted
from resilience.testing import EventCapture, ScriptedBackend, fail, hang, now, ok
from resilience.tiers import Task, Tier

TASK_KEYS = ("rag_context", "tool_results", "memories")
POST_KEYS = ("memory_saved", "stream_closed", "usage")


@pytest.fixture(autouse=True)
def _no_retries(monkeypatch):
    monkeypatch.setenv("RESILIENCE_DEFAULTS__RETRY_ATTEMPTS", "1")
    reset_bulkheads()
    yield
    reset_bulkheads()


class ChatState(TypedDict, total=False):
    query: str
    enable_rag: bool
    enable_tools: bool
    rag_context: list[str]
    tool_results: dict[str, Any]
    memories: list[str]
    metadata: dict[str, Any]


def retrieval(rag, tools, memory, **options) -> Tier:
    return Tier(
        "retrieval",
        [
            Task("rag_context", rag, default=list, enabled="enable_rag", backend="rag"),
            Task("tool_results", tools, default=dict, enabled="enable_tools", backend="tools"),
            Task("memories", memory, default=list, backend="memory"),
        ],
        **options,
    )


def post_generation(save, push, usage, **options) -> Tier:
    return Tier(
        "post_generation",
        [
            Task("memory_saved", save, default=False, backend="memory_store"),
            Task("stream_closed", push, default=False, backend="stream"),
            Task("usage", usage, default=dict, backend="usage"),
        ],
        **options,
    )


def backends(*scripts):
    return [ScriptedBackend([outcome]) for outcome in scripts]


def request() -> ChatState:
    return ChatState(query="what is a bulkhead?", enable_rag=True, enable_tools=True)


def statuses(state, tier="retrieval") -> dict[str, str]:
    return {key: task["status"] for key, task in state["metadata"][tier]["tasks"].items()}


# --- the audit's twelve scenarios ------------------------------------------------------------


async def test_audit_all_tasks_succeed_in_parallel() -> None:
    rag, tools, memory = backends(
        ok(["doc"], after_s=0.1), ok({"calc": 4}, after_s=0.2), ok(["likes tea"], after_s=0.3)
    )
    state = request()
    assert await retrieval(rag, tools, memory).run(state) is state
    assert (state["rag_context"], state["tool_results"], state["memories"]) == (
        ["doc"],
        {"calc": 4},
        ["likes tea"],
    )
    assert now() == 0.3
    assert [backend.call_times for backend in (rag, tools, memory)] == [[0.0], [0.0], [0.0]]
    assert rag.calls[0][1] == (state,)  # each call receives the state itself
    assert statuses(state) == dict.fromkeys(TASK_KEYS, "ok")


async def test_audit_rag_disabled() -> None:
    rag, tools, memory = backends(ok(["doc"]), ok({"calc": 4}), ok(["likes tea"]))
    state = request()
    state["enable_rag"] = False
    await retrieval(rag, tools, memory).run(state)
    assert rag.call_count == 0
    assert state["rag_context"] == []
    assert (state["tool_results"], state["memories"]) == ({"calc": 4}, ["likes tea"])
    assert statuses(state) == {"rag_context": "skipped", "tool_results": "ok", "memories": "ok"}
    assert state["metadata"]["retrieval"]["skipped"] == 1


async def test_audit_tools_disabled() -> None:
    rag, tools, memory = backends(ok(["doc"]), ok({"calc": 4}), ok(["likes tea"]))
    state = request()
    state["enable_tools"] = False
    await retrieval(rag, tools, memory).run(state)
    assert tools.call_count == 0
    assert state["tool_results"] == {}
    assert statuses(state) == {"rag_context": "ok", "tool_results": "skipped", "memories": "ok"}


async def test_audit_partial_failure() -> None:
    rag, tools, memory = backends(
        ok(["doc"], after_s=0.1), fail(ConnectionError("tools down"), after_s=0.2), ok(["m"])
    )
    state = request()
    with EventCapture() as events:
        await retrieval(rag, tools, memory).run(state)
    assert (state["rag_context"], state["tool_results"], state["memories"]) == (["doc"], {}, ["m"])
    task = state["metadata"]["retrieval"]["tasks"]["tool_results"]
    assert task == {
        "status": "failed",
        "backend": "tools",
        "duration_s": 0.2,
        "attempts": 1,
        "error": "ConnectionError",
    }
    assert events.of(FellBack) == [FellBack("tools", "ConnectionError", programming_error=False)]


async def test_audit_all_tasks_fail() -> None:
    rag, tools, memory = backends(
        fail(ConnectionError()), fail(TimeoutError()), fail(RuntimeError("memory corrupt"))
    )
    state = request()
    await retrieval(rag, tools, memory).run(state)
    assert (state["rag_context"], state["tool_results"], state["memories"]) == ([], {}, [])
    meta = state["metadata"]["retrieval"]
    assert (meta["succeeded"], meta["failed"], meta["skipped"]) == (0, 3, 0)
    assert [task["error"] for task in meta["tasks"].values()] == [
        "ConnectionError",
        "TimeoutError",
        "RuntimeError",
    ]


async def test_audit_tier_timeout() -> None:
    rag, tools, memory = backends(ok(["doc"], after_s=0.1), ok({"calc": 4}, after_s=4.0), hang())
    state = request()
    await retrieval(rag, tools, memory).run(state)
    assert now() == 5.0  # the original workflow's 5 s budget
    assert (state["rag_context"], state["tool_results"], state["memories"]) == (
        ["doc"],
        {"calc": 4},
        [],
    )
    assert statuses(state) == {"rag_context": "ok", "tool_results": "ok", "memories": "timeout"}
    assert state["metadata"]["retrieval"]["timed_out"] is True
    assert (memory.running, memory.cancelled) == (0, 1)


async def test_audit_post_generation_success() -> None:
    save, push, usage = backends(
        ok(value=True), ok(value=True), ok({"tokens": 812, "citations": ["doc"]})
    )
    state = request()
    await post_generation(save, push, usage).run(state)
    assert (state["memory_saved"], state["stream_closed"], state["usage"]) == (
        True,
        True,
        {"tokens": 812, "citations": ["doc"]},
    )
    assert statuses(state, "post_generation") == dict.fromkeys(POST_KEYS, "ok")


async def test_audit_post_generation_partial_failure() -> None:
    save, push, usage = backends(
        fail(ConnectionError("store down")), ok(value=True), ok({"tokens": 1})
    )
    state = request()
    await post_generation(save, push, usage).run(state)
    assert (state["memory_saved"], state["stream_closed"], state["usage"]) == (
        False,
        True,
        {"tokens": 1},
    )
    assert statuses(state, "post_generation") == {
        "memory_saved": "failed",
        "stream_closed": "ok",
        "usage": "ok",
    }


async def test_audit_tier_1_sequential(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_TIERS__RETRIEVAL__PARALLEL", "false")
    rag, tools, memory = backends(
        ok(["doc"], after_s=0.1), ok({"calc": 4}, after_s=0.2), ok(["m"], after_s=0.3)
    )
    state = request()
    await retrieval(rag, tools, memory).run(state)
    assert [backend.call_times for backend in (rag, tools, memory)] == [
        [0.0],
        [0.1],
        [pytest.approx(0.3)],
    ]
    assert (state["rag_context"], state["tool_results"], state["memories"]) == (
        ["doc"],
        {"calc": 4},
        ["m"],
    )
    assert state["metadata"]["retrieval"]["mode"] == "sequential"
    assert statuses(state) == dict.fromkeys(TASK_KEYS, "ok")


async def test_audit_tier_2_sequential(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_TIERS__POST_GENERATION__PARALLEL", "false")
    save, push, usage = backends(ok(value=True, after_s=1.0), fail(ConnectionError()), ok({"t": 1}))
    state = request()
    await post_generation(save, push, usage).run(state)
    assert [backend.call_times for backend in (save, push, usage)] == [[0.0], [1.0], [1.0]]
    assert (state["memory_saved"], state["stream_closed"], state["usage"]) == (
        True,
        False,
        {"t": 1},
    )
    meta = state["metadata"]["post_generation"]
    assert meta["mode"] == "sequential"
    assert meta["duration_s"] == 1.0
    assert statuses(state, "post_generation") == {
        "memory_saved": "ok",
        "stream_closed": "failed",
        "usage": "ok",
    }


def _shape(value):
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value)


async def test_sequential_mode_gives_the_same_results_and_metadata_shape() -> None:
    outcomes = (ok(["doc"], after_s=0.1), fail(ConnectionError()), ok(["m"], after_s=0.2))
    parallel, sequential = request(), request()
    await retrieval(*backends(*outcomes), parallel=True).run(parallel)
    await retrieval(*backends(*outcomes), parallel=False).run(sequential)
    assert {key: parallel[key] for key in TASK_KEYS} == {key: sequential[key] for key in TASK_KEYS}
    assert _shape(parallel["metadata"]) == _shape(sequential["metadata"])
    assert statuses(parallel) == statuses(sequential)
    assert (
        parallel["metadata"]["retrieval"]["mode"],
        sequential["metadata"]["retrieval"]["mode"],
    ) == (
        "parallel",
        "sequential",
    )


@pytest.mark.parametrize(
    ("parallel", "wall", "speedup"), [(True, 0.3, 2.0), (False, 0.6, 1.0)], ids=["par", "seq"]
)
async def test_audit_speedup_calculation(parallel, wall, speedup) -> None:
    rag, tools, memory = backends(ok(1, after_s=0.1), ok(2, after_s=0.2), ok(3, after_s=0.3))
    state = request()
    await retrieval(rag, tools, memory, parallel=parallel).run(state)
    meta = state["metadata"]["retrieval"]
    assert meta["duration_s"] == pytest.approx(wall, abs=0.001)
    assert meta["task_duration_sum_s"] == pytest.approx(0.6, abs=1e-9)
    assert meta["speedup"] == pytest.approx(speedup, abs=0.01)
    assert now() == pytest.approx(wall, abs=0.001)


async def test_audit_monitoring_metadata() -> None:
    rag, tools, memory = backends(ok(["doc"], after_s=0.25), fail(KeyError("tool")), hang())
    state = request()
    state["enable_tools"] = True
    state["metadata"] = {"request_id": "r-1", "previous": {"nested": [1, 2]}}
    existing = state["metadata"]
    await retrieval(rag, tools, memory, timeout_s=0.5).run(state)
    assert state["metadata"] is existing
    assert existing == {
        "request_id": "r-1",
        "previous": {"nested": [1, 2]},
        "retrieval": {
            "mode": "parallel",
            "duration_s": 0.5,
            "timeout_s": 0.5,
            "timed_out": True,
            "tasks": {
                "rag_context": {
                    "status": "ok",
                    "backend": "rag",
                    "duration_s": 0.25,
                    "attempts": 1,
                    "error": None,
                },
                "tool_results": {
                    "status": "failed",
                    "backend": "tools",
                    "duration_s": 0.0,
                    "attempts": 1,
                    "error": "KeyError",
                },
                "memories": {
                    "status": "timeout",
                    "backend": "memory",
                    "duration_s": 0.5,
                    "attempts": 1,
                    "error": "TimeoutError",
                },
            },
            "succeeded": 1,
            "failed": 2,
            "skipped": 0,
            "task_duration_sum_s": 0.75,
            "speedup": 1.5,
        },
    }


# --- timing, hangs and cancellation ----------------------------------------------------------


@pytest.mark.parametrize("parallel", [True, False], ids=["par", "seq"])
async def test_a_backend_that_hangs_costs_the_tier_exactly_its_timeout(parallel) -> None:
    rag, tools, memory = backends(ok(["doc"], after_s=0.1), hang(), ok(["m"], after_s=0.2))
    state = request()
    tier = retrieval(rag, tools, memory, timeout_s=2.0, parallel=parallel)
    await tier.run(state)
    assert now() == 2.0
    assert state["metadata"]["retrieval"]["duration_s"] == 2.0
    assert state["rag_context"] == ["doc"]
    assert state["tool_results"] == {}
    assert (tools.running, tools.cancelled) == (0, 1)
    if parallel:
        assert state["memories"] == ["m"]
        assert statuses(state)["memories"] == "ok"
    else:  # stuck behind the hang: it never started
        assert (state["memories"], memory.call_count) == ([], 0)
        assert state["metadata"]["retrieval"]["tasks"]["memories"]["duration_s"] == 0.0
        assert statuses(state)["memories"] == "timeout"


def _running_tasks() -> list[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return [task for task in asyncio.all_tasks() if task is not current and not task.done()]


@pytest.mark.parametrize("parallel", [True, False], ids=["par", "seq"])
async def test_cancelling_the_run_cancels_awaits_and_reraises_writing_no_key(parallel) -> None:
    unwound = []

    async def slow_to_unwind(state) -> str:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.5)  # cleanup the tier must wait for
            unwound.append(now())
        return "never"

    fast = ScriptedBackend([ok("fast", after_s=0.1)])
    tier = Tier(
        "retrieval",
        [
            Task("fast", fast, policy=compose()),
            Task("slow", slow_to_unwind, policy=compose()),
        ],
        parallel=parallel,
    )
    state = {"query": "q"}
    run = asyncio.create_task(tier.run(state))
    await asyncio.sleep(1.0)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert now() == 1.5
    assert unwound == [1.5]
    assert state == {"query": "q"}  # not even the finished task's key
    assert _running_tasks() == []


async def test_the_tier_timeout_is_not_mistaken_for_the_callers_cancellation() -> None:
    memory = ScriptedBackend([hang()])
    tier = Tier("t", [Task("memories", memory, policy=compose())], timeout_s=1.0)
    run = asyncio.create_task(tier.run({}))
    await asyncio.sleep(0.5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert now() == 0.5


async def test_a_backend_raising_cancelled_error_by_itself_fails_alone() -> None:
    rogue = ScriptedBackend([fail(asyncio.CancelledError())])
    fine = ScriptedBackend([ok("fine", after_s=0.1)])
    tier = Tier(
        "t",
        [Task("rogue", rogue, default="d", policy=compose()), Task("fine", fine)],
    )
    state = await tier.run({})
    assert (state["rogue"], state["fine"]) == ("d", "fine")
    assert state["metadata"]["t"]["tasks"]["rogue"]["error"] == "CancelledError"


async def test_in_turn_a_task_swallowing_the_timeouts_cancellation_cannot_extend_the_tier() -> None:
    async def stubborn(state) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:  # a misbehaving backend
            return "swallowed"
        return "slept"

    after = ScriptedBackend([ok("late", after_s=1.0)])
    tier = Tier(
        "t",
        [Task("a", stubborn, policy=compose()), Task("b", after, policy=compose())],
        parallel=False,
        timeout_s=1.0,
    )
    state = await tier.run({})
    assert now() == 1.0
    assert after.call_count == 0
    assert (state["b"], statuses(state, "t")["b"]) == (None, "timeout")


class Abort(BaseException):
    """Not an ``Exception``: like an interpreter exit, it is not the tier's to absorb."""


async def test_a_base_exception_propagates_after_the_siblings_are_cancelled_and_awaited() -> None:
    async def aborts(state) -> None:
        await asyncio.sleep(0.1)
        raise Abort

    sibling = ScriptedBackend([hang()])
    tier = Tier("t", [Task("a", aborts, policy=compose()), Task("b", sibling, policy=compose())])
    state: dict[str, Any] = {}
    with pytest.raises(Abort):
        await tier.run(state)
    assert (sibling.running, sibling.cancelled) == (0, 1)
    assert _running_tasks() == []
    assert state == {}


# --- state shape -----------------------------------------------------------------------------


async def test_undeclared_keys_are_never_touched() -> None:
    shared = {"deep": [1, {"x": 2}]}
    state = {"query": "q", "history": shared, "memories": "stale", "metadata": {"other": {}}}

    async def mutate_nothing(state) -> list[str]:
        return ["fresh"]

    await Tier("t", [Task("memories", mutate_nothing, policy=compose())]).run(state)
    assert list(state) == ["query", "history", "memories", "metadata"]
    assert state["history"] is shared
    assert shared == {"deep": [1, {"x": 2}]}
    assert state["memories"] == ["fresh"]
    assert list(state["metadata"]) == ["other", "t"]


async def test_metadata_is_created_when_missing_or_none() -> None:
    for state in ({}, {"metadata": None}):
        await Tier("t", [Task("a", ScriptedBackend([ok(1)]))], metadata_key="tier_a").run(state)
        assert list(state["metadata"]) == ["tier_a"]


async def test_defaults_are_fresh_per_run() -> None:
    broken = ScriptedBackend([fail(ConnectionError())])
    tier = Tier(
        "t",
        [
            Task("factory", broken, default=list, backend="a"),
            Task("value", broken, default={"docs": []}, backend="b"),
        ],
    )
    first, second = await tier.run({}), await tier.run({})
    first["factory"].append("corrupted")
    first["value"]["docs"].append("corrupted")
    assert (second["factory"], second["value"]) == ([], {"docs": []})


async def test_a_failing_default_factory_raises_and_writes_nothing() -> None:
    def broken_factory() -> list[str]:
        raise RuntimeError("no default")

    tier = Tier(
        "t",
        [
            Task("ok", ScriptedBackend([ok(1)])),
            Task("bad", ScriptedBackend([fail(ConnectionError())]), default=broken_factory),
        ],
    )
    state: dict[str, Any] = {}
    with pytest.raises(Exception, match="safe default factory"):
        await tier.run(state)
    assert state == {}


async def test_updates_returns_only_the_update_and_leaves_the_state_alone() -> None:
    rag, tools, memory = backends(ok(["doc"]), ok({"calc": 4}), ok(["m"]))
    state = request()
    state["metadata"] = {"request_id": "r-1"}
    before = {**state, "metadata": dict(state["metadata"])}
    update = await retrieval(rag, tools, memory).updates(state)
    assert state == before
    assert set(update) == {*TASK_KEYS, "metadata"}
    assert update["rag_context"] == ["doc"]
    assert update["metadata"]["request_id"] == "r-1"
    assert update["metadata"]["retrieval"]["succeeded"] == 3
    assert update["metadata"] is not state["metadata"]


async def test_updates_accepts_read_only_mappings() -> None:
    update = await Tier("t", [Task("a", ScriptedBackend([ok(1)]))]).updates(MappingProxyType({}))
    assert update["a"] == 1


@pytest.mark.parametrize("state", [[("query", "q")], "state", None])
async def test_a_state_that_is_not_a_dict_is_a_type_error(state) -> None:
    backend = ScriptedBackend([ok(1)])
    with pytest.raises(TypeError, match="dict"):
        await Tier("t", [Task("a", backend)]).run(state)
    assert backend.call_count == 0


async def test_metadata_that_is_not_a_dict_is_a_type_error_before_anything_runs() -> None:
    backend = ScriptedBackend([ok(1)])
    with pytest.raises(TypeError, match="metadata"):
        await Tier("t", [Task("a", backend)]).run({"metadata": "oops"})
    assert backend.call_count == 0


# --- statuses and policies -------------------------------------------------------------------


async def test_fallback_means_a_policy_turned_the_call_away_before_the_backend(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_BACKENDS__RAG__BREAKER_FAILURE_THRESHOLD", "1")
    rag = ScriptedBackend([fail(ConnectionError("down"))])
    tier = Tier("t", [Task("rag_context", rag, default=list, backend="rag")])
    first = await tier.run({})
    second = await tier.run({})
    assert first["metadata"]["t"]["tasks"]["rag_context"]["status"] == "failed"
    assert second["metadata"]["t"]["tasks"]["rag_context"] == {
        "status": "fallback",
        "backend": "rag",
        "duration_s": 0.0,
        "attempts": 1,
        "error": "CircuitOpenError",
    }
    assert rag.call_count == 1  # the open breaker kept the second call away
    assert second["rag_context"] == []


async def test_a_full_bulkhead_queue_falls_back_inside_a_tier(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_BACKENDS__LLM__MAX_CONCURRENCY", "1")
    monkeypatch.setenv("RESILIENCE_BACKENDS__LLM__QUEUE_SIZE", "0")
    llm = ScriptedBackend([ok("answer", after_s=1.0)])
    tier = Tier("t", [Task("a", llm, backend="llm"), Task("b", llm, backend="llm", default="busy")])
    state = await tier.run({})
    assert (state["a"], state["b"]) == ("answer", "busy")
    assert statuses(state, "t") == {"a": "ok", "b": "fallback"}
    assert state["metadata"]["t"]["tasks"]["b"]["error"] == "QueueFullError"


async def test_task_priorities_order_a_limited_backends_queue(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_BACKENDS__LLM__MAX_CONCURRENCY", "1")
    llm = ScriptedBackend([ok(after_s=1.0)])

    def call(name):
        async def run(state) -> str:
            await llm(name)
            return name

        return run

    tier = Tier(
        "t",
        [
            Task(name, call(name), backend="llm", priority=level)
            for name, level in (("first", 0), ("low", 0), ("mid", 5), ("lowish", 1), ("top", 9))
        ],
    )
    await tier.run({})
    assert [args[0] for _, args, _ in llm.calls] == ["first", "top", "mid", "lowish", "low"]


async def test_attempts_are_counted_by_the_retry_policy(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_DEFAULTS__RETRY_ATTEMPTS", "3")
    flaky = ScriptedBackend([fail(ConnectionError()), ok("second time")])
    state = await Tier("t", [Task("a", flaky)]).run({})
    assert state["a"] == "second time"
    assert state["metadata"]["t"]["tasks"]["a"]["attempts"] == 2


async def test_an_explicit_policy_replaces_the_configured_one(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_DEFAULTS__TIMEOUT_S", "0.1")
    slow = ScriptedBackend([ok("slow but fine", after_s=1.0)])
    state = await Tier("t", [Task("a", slow, policy=compose())]).run({})
    assert state["a"] == "slow but fine"


async def test_a_programming_error_is_isolated_and_reported_as_a_bug() -> None:
    async def buggy(state) -> str:
        return state.query  # the audit's `state.attr` on a dict

    with EventCapture() as events:
        state = await Tier("t", [Task("a", buggy, default="")]).run({"query": "q"})
    assert state["a"] == ""
    assert state["metadata"]["t"]["tasks"]["a"]["error"] == "AttributeError"
    assert events.of(FellBack) == [FellBack("a", "AttributeError", programming_error=True)]


async def test_enable_predicates_and_missing_enable_keys() -> None:
    rag, tools, memory = backends(ok(["doc"]), ok({"calc": 4}), ok(["m"]))
    tier = Tier(
        "t",
        [
            Task("rag_context", rag, enabled="enable_rag"),  # missing key: on
            Task("tool_results", tools, enabled=lambda state: "calc" in state["query"]),
            Task("memories", memory, enabled=lambda state: state["no_such_key"]),
        ],
    )
    state = await tier.run({"query": "no tools needed"})
    assert statuses(state, "t") == {
        "rag_context": "ok",
        "tool_results": "skipped",
        "memories": "failed",  # the predicate raised: the task's own failure
    }
    assert state["metadata"]["t"]["tasks"]["memories"]["error"] == "KeyError"


async def test_a_sync_callable_runs_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()

    def blocking_lookup(state) -> int:
        return threading.get_ident()

    state = await Tier("t", [Task("thread", blocking_lookup)]).run({})
    assert state["thread"] != loop_thread
    assert statuses(state, "t") == {"thread": "ok"}


async def test_where_each_kind_of_call_runs() -> None:
    loop_thread = threading.get_ident()
    threads: dict[str, int] = {}
    rag = ScriptedBackend([ok(["doc"], after_s=1.0)])

    def start_rag(name, query):  # sync, but only starts the async call
        threads[name] = threading.get_ident()
        return rag(query)

    def adapter(name):
        return functools.partial(lambda state, name: start_rag(name, state["query"]), name=name)

    async def coroutine_function(state) -> str:
        threads["async"] = threading.get_ident()
        return "async"

    tier = Tier(
        "t",
        [
            Task("async", coroutine_function),
            Task("lambda", lambda state: start_rag("lambda", state["query"])),
            Task("lambda_value", lambda state: len(state["query"])),
            Task("partial", adapter("partial")),
            Task(
                "forced_thread",
                lambda state: start_rag("forced_thread", state["query"]),
                blocking=True,
            ),
            Task("forced_loop", adapter("forced_loop"), blocking=False),
        ],
    )
    state = await tier.run({"query": "q"})
    assert {key: state[key] for key in threads} == {
        "async": "async",
        "lambda": ["doc"],
        "partial": ["doc"],  # not a lambda: started in a thread, awaited on the loop
        "forced_thread": ["doc"],
        "forced_loop": ["doc"],
    }
    assert state["lambda_value"] == 1
    on_loop = {key for key, thread in threads.items() if thread == loop_thread}
    assert on_loop == {"async", "lambda", "forced_loop"}
    assert [task.blocking for task in tier.tasks] == [False, False, False, True, True, False]


# --- events and settings ---------------------------------------------------------------------


async def test_start_and_finish_go_to_the_observer_hub() -> None:
    rag, tools, memory = backends(ok(1, after_s=0.1), fail(ConnectionError()), ok(3))
    state = request()
    state["enable_rag"] = False
    with EventCapture() as events:
        await retrieval(rag, tools, memory).run(state)
    assert events.of(TierStarted) == [TierStarted("retrieval", "parallel", TASK_KEYS)]
    assert events.of(TierFinished) == [
        TierFinished("retrieval", "parallel", 0.0, succeeded=1, failed=1, skipped=1)
    ]


async def test_the_environment_overrides_the_codes_options(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_TIERS__RETRIEVAL__TIMEOUT_S", "1.5")
    monkeypatch.setenv("RESILIENCE_TIERS__RETRIEVAL__METADATA_KEY", "tier1")
    rag, tools, memory = backends(hang(), ok(2), ok(3))
    state = request()
    tier = retrieval(rag, tools, memory, timeout_s=10.0, parallel=True, metadata_key="code")
    await tier.run(state)
    assert now() == 1.5
    assert list(state["metadata"]) == ["tier1"]
    assert tier.options().parallel is True  # not set in the environment: the code's choice


async def test_code_options_apply_when_the_environment_is_silent() -> None:
    state = await Tier("t", [Task("a", ScriptedBackend([hang()]))], timeout_s=0.25).run({})
    assert now() == 0.25
    assert state["metadata"]["t"]["timeout_s"] == 0.25


async def test_the_default_tier_timeout_is_five_seconds() -> None:
    await Tier("t", [Task("a", ScriptedBackend([hang()]), policy=compose())]).run({})
    assert now() == 5.0


def test_bad_tier_settings_in_the_environment_fail_at_load(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_TIERS__RETRIEVAL__PARALLEL", "sometimes")
    monkeypatch.setenv("RESILIENCE_TIERS__RETRIEVAL__TIMEOUT_S", "-1")
    with pytest.raises(ConfigurationError) as info:
        ResilienceSettings()
    assert set(info.value.problems) == {
        "RESILIENCE_TIERS__RETRIEVAL__PARALLEL",
        "RESILIENCE_TIERS__RETRIEVAL__TIMEOUT_S",
    }


async def _noop(state) -> None:
    return None


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: Tier("t", []), ValueError, "no tasks"),
        (lambda: Tier("t", [Task("a", _noop), Task("a", _noop)]), ValueError, "two tasks"),
        (lambda: Tier("t", [_noop]), TypeError, "Task objects"),
        (lambda: Tier("t", Task("a", _noop)), TypeError, "iterable of Task"),
        (lambda: Tier("", [Task("a", _noop)]), TypeError, "name"),
        (lambda: Tier("t", [Task("a", _noop)], timeout_s=0), ValueError, "timeout_s"),
        (lambda: Tier("t", [Task("a", _noop)], parallel="no"), TypeError, "parallel"),
        (lambda: Tier("t", [Task("a", _noop)], metadata_key=""), TypeError, "metadata_key"),
        (lambda: Tier("t", [Task("a", _noop)], settings={}), TypeError, "settings"),
        (lambda: Task("metadata", _noop), ValueError, "reserved"),
        (lambda: Task("", _noop), TypeError, "key"),
        (lambda: Task("a", "not callable"), TypeError, "callable"),
        (lambda: Task("a", _noop, enabled=1), TypeError, "enabled"),
        (lambda: Task("a", _noop, backend=""), TypeError, "backend"),
        (lambda: Task("a", _noop, policy=object()), TypeError, "Policy"),
        (lambda: Task("a", _noop, priority=1.5), TypeError, "priority"),
        (lambda: Task("a", _noop, priority=True), TypeError, "priority"),
        (lambda: Task("a", _noop, blocking="yes"), TypeError, "blocking"),
    ],
)
def test_configuration_mistakes_fail_at_construction(build, error, message) -> None:
    with pytest.raises(error, match=message):
        build()


def test_reprs_name_the_parts() -> None:
    tier = Tier("t", [Task("a", _noop, backend="rag")])
    assert repr(tier) == "Tier('t', tasks=['a'])"
    assert repr(tier.tasks[0]).startswith("Task('a', <function _noop")
