"""Tier nodes in real LangGraph graphs, on simulated time, against plain parallel branches."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.errors import InvalidUpdateError
from langgraph.graph import END, START, StateGraph
from langgraph.types import Overwrite
from pydantic import BaseModel, Field

from adapters.langgraph import add_tier, merge_metadata, tier_node
from resilience import compose, timeout
from resilience.testing import ScriptedBackend, fail, hang, now, ok
from resilience.tiers import Task, Tier

#: No retries, so each backend is called once and the timings are exact.
POLICY = compose(timeout(1.0))


class State(TypedDict, total=False):
    query: str
    documents: list[str]
    tool_results: list[str]
    memories: list[str]
    answer: str
    metadata: dict[str, Any]


class MergedState(TypedDict, total=False):
    query: str
    documents: list[str]
    tool_results: list[str]
    memories: list[str]
    answer: str
    metadata: Annotated[dict[str, Any], merge_metadata]


class Backends:
    """Three backends: RAG answers after 0.1 s, tools fail after 0.05 s, memory after 0.2 s."""

    def __init__(self) -> None:
        self.rag = ScriptedBackend([ok(["doc-1"], after_s=0.1)])
        self.tools = ScriptedBackend([fail(ConnectionError("tools down"), after_s=0.05)])
        self.memory = ScriptedBackend([ok(["earlier"], after_s=0.2)])


def retrieval_tier(backends: Backends) -> Tier:
    return Tier(
        "retrieval",
        [
            Task("documents", lambda s: backends.rag(s["query"]), default=list, policy=POLICY),
            Task("tool_results", lambda s: backends.tools(s["query"]), default=list, policy=POLICY),
            Task("memories", lambda s: backends.memory(s["query"]), default=list, policy=POLICY),
        ],
    )


async def test_a_tier_node_absorbs_a_failing_backend_and_the_graph_completes():
    backends = Backends()
    graph = StateGraph(State)
    graph.add_node(tier_node(retrieval_tier(backends)))
    graph.add_edge(START, "retrieval")
    graph.add_edge("retrieval", END)

    out = await graph.compile().ainvoke({"query": "q", "metadata": {"trace_id": "t-1"}})

    assert out["documents"] == ["doc-1"]
    assert out["tool_results"] == []  # the failing backend's default
    assert out["memories"] == ["earlier"]
    assert out["metadata"]["trace_id"] == "t-1"  # the caller's entries are kept
    tasks = out["metadata"]["retrieval"]["tasks"]
    assert {key: task["status"] for key, task in tasks.items()} == {
        "documents": "ok",
        "tool_results": "failed",
        "memories": "ok",
    }
    assert tasks["tool_results"]["error"] == "ConnectionError"
    assert now() == pytest.approx(0.2)  # side by side: the slowest call, not the sum


async def test_plain_parallel_branches_fail_as_a_whole_when_one_backend_raises():
    backends = Backends()

    async def documents(state: State) -> State:
        return {"documents": await backends.rag(state["query"])}

    async def tool_results(state: State) -> State:
        return {"tool_results": await backends.tools(state["query"])}

    async def memories(state: State) -> State:
        return {"memories": await backends.memory(state["query"])}

    graph = StateGraph(State)
    for node in (documents, tool_results, memories):
        graph.add_node(node)
        graph.add_edge(START, node.__name__)
    graph.add_edge(["documents", "tool_results", "memories"], END)

    with pytest.raises(ConnectionError, match="tools down"):
        await graph.compile().ainvoke({"query": "q"})

    assert now() == pytest.approx(0.05)  # the step failed when tools did
    assert (backends.rag.cancelled, backends.memory.cancelled) == (1, 1)  # results lost


async def test_tiers_in_one_step_conflict_on_a_plain_metadata_key():
    backends = Backends()
    answer = Tier("answer", [Task("answer", lambda _: ok_after("a", 0.1), policy=POLICY)])
    graph = two_tiers_side_by_side(State, retrieval_tier(backends), answer)

    with pytest.raises(InvalidUpdateError, match="metadata"):
        await graph.compile().ainvoke({"query": "q"})


async def test_tiers_in_one_step_keep_every_entry_with_merge_metadata():
    backends = Backends()
    answer = Tier("answer", [Task("answer", lambda _: ok_after("a", 0.1), policy=POLICY)])
    graph = two_tiers_side_by_side(MergedState, retrieval_tier(backends), answer)

    out = await graph.compile().ainvoke({"query": "q", "metadata": {"trace_id": "t-1"}})

    assert set(out["metadata"]) == {"trace_id", "retrieval", "answer"}
    assert (out["answer"], out["tool_results"], out["documents"]) == ("a", [], ["doc-1"])


async def test_tiers_in_turn_keep_every_entry_on_a_plain_metadata_key():
    backends = Backends()
    answer = Tier("answer", [Task("answer", lambda s: ok_after(f"{s['documents']}", 0.1))])
    graph = StateGraph(State)
    add_tier(graph, retrieval_tier(backends))
    add_tier(graph, answer)
    graph.add_edge(START, "retrieval")
    graph.add_edge("retrieval", "answer")

    out = await graph.compile().ainvoke({"query": "q"})

    assert set(out["metadata"]) == {"retrieval", "answer"}
    assert out["answer"] == "['doc-1']"  # the second tier read the first one's result


def test_merge_metadata_merges_by_entry_into_a_new_dict():
    current = {"trace_id": "t-1", "retrieval": {"run": 1}}
    update = {"trace_id": "t-1", "retrieval": {"run": 2}, "answer": {"run": 1}}
    merged = merge_metadata(current, update)
    assert merged == {"trace_id": "t-1", "retrieval": {"run": 2}, "answer": {"run": 1}}
    assert current == {"trace_id": "t-1", "retrieval": {"run": 1}}  # not mutated
    assert merged is not current
    assert merged is not update
    assert merge_metadata(None, update) == update
    assert merge_metadata(current, None) == current
    with pytest.raises(TypeError, match="metadata must be a dict, got list as update"):
        merge_metadata(current, [("a", 1)])  # type: ignore[arg-type]


async def test_an_overwrite_replaces_a_merged_metadata_key():
    async def reset(state: MergedState) -> dict[str, Any]:
        return {"metadata": Overwrite({"fresh": True})}

    graph = StateGraph(MergedState)
    graph.add_node(reset)
    graph.add_edge(START, "reset")
    out = await graph.compile().ainvoke({"query": "q", "metadata": {"old": 1}})
    assert out["metadata"] == {"fresh": True}


def test_add_tier_rejects_keys_the_state_does_not_declare():
    class Narrow(TypedDict):
        query: str
        documents: list[str]

    graph = StateGraph(Narrow)
    with pytest.raises(ValueError, match=r"\['tool_results', 'memories', 'metadata'\]"):
        add_tier(graph, retrieval_tier(Backends()))
    assert "retrieval" not in graph.nodes


def test_add_tier_names_the_node_and_returns_the_graph():
    graph = StateGraph(State)
    tier = retrieval_tier(Backends())
    assert add_tier(graph, tier, name="tier_1") is graph
    assert add_tier(graph, tier) is graph
    assert set(graph.nodes) == {"tier_1", "retrieval"}


def test_tier_node_is_named_after_its_tier_and_needs_a_tier():
    node = tier_node(retrieval_tier(Backends()))
    assert node.__name__ == "retrieval"
    with pytest.raises(TypeError, match="needs a resilience Tier"):
        tier_node(lambda state: state)  # type: ignore[arg-type]


class ModelState(BaseModel):
    query: str = ""
    documents: list[str] = Field(default_factory=list)
    tool_results: list[str] = Field(default_factory=list)
    memories: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


@dataclasses.dataclass
class DataclassState:
    query: str = ""
    documents: list[str] = dataclasses.field(default_factory=list)
    tool_results: list[str] = dataclasses.field(default_factory=list)
    memories: list[str] = dataclasses.field(default_factory=list)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


@pytest.mark.parametrize("schema", [ModelState, DataclassState])
async def test_pydantic_and_dataclass_states_are_read_as_mappings(schema):
    graph = StateGraph(schema)
    add_tier(graph, retrieval_tier(Backends()))
    graph.add_edge(START, "retrieval")

    out = await graph.compile().ainvoke({"query": "q"})

    assert (out["documents"], out["tool_results"], out["memories"]) == (["doc-1"], [], ["earlier"])
    assert out["metadata"]["retrieval"]["failed"] == 1


async def test_other_state_types_are_refused_with_the_tier_named():
    node = tier_node(retrieval_tier(Backends()))
    with pytest.raises(TypeError, match="tier 'retrieval' needs the graph state as a dict"):
        await node(["q"])


async def test_progress_goes_to_the_custom_stream_while_the_node_runs():
    graph = StateGraph(State)
    add_tier(graph, retrieval_tier(Backends()), stream_progress=True)
    graph.add_edge(START, "retrieval")

    seen = [
        (mode, chunk, now())
        async for mode, chunk in graph.compile().astream(
            {"query": "q"}, stream_mode=["custom", "updates"]
        )
    ]

    custom = [
        (chunk["event"], chunk.get("key"), at) for mode, chunk, at in seen if mode == "custom"
    ]
    assert custom[0][0] == "resilience.tier_started"
    assert ("resilience.task_failed", "tool_results", pytest.approx(0.05)) in custom
    assert custom[-1][0] == "resilience.tier_finished"
    assert [mode for mode, _, _ in seen][-1] == "updates"  # the state update comes last


async def test_without_stream_progress_the_custom_stream_stays_empty():
    graph = StateGraph(State)
    add_tier(graph, retrieval_tier(Backends()))
    graph.add_edge(START, "retrieval")
    chunks = [c async for c in graph.compile().astream({"query": "q"}, stream_mode="custom")]
    assert chunks == []


async def test_cancelling_the_graph_cancels_the_tier_and_leaves_no_task():
    backends = Backends()
    backends.memory = ScriptedBackend([hang()])
    run = asyncio.create_task(
        _compiled(retrieval_tier(backends)).ainvoke({"query": "q"}),
    )
    await asyncio.sleep(0.5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert backends.memory.cancelled == 1
    assert backends.memory.running == 0


def test_adapters_import_without_langgraph():
    code = (
        "import sys; sys.modules['langgraph'] = None\n"
        "import adapters\n"
        "try:\n"
        "    import adapters.langgraph\n"
        "except ImportError:\n"
        "    print('optional')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "optional\n"


async def ok_after(value: str, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return value


def two_tiers_side_by_side(schema: type, first: Tier, second: Tier) -> StateGraph:
    graph = StateGraph(schema)
    add_tier(graph, first)
    add_tier(graph, second)
    graph.add_edge(START, first.name)
    graph.add_edge(START, second.name)
    graph.add_edge([first.name, second.name], END)
    return graph


def _compiled(tier: Tier) -> Any:
    graph = StateGraph(State)
    add_tier(graph, tier)
    graph.add_edge(START, tier.name)
    return graph.compile()
