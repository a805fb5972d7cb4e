"""The motivating workflow, built as a user would, under injected faults."""

from __future__ import annotations

import asyncio
import copy
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from adapters import AgentResponse, Document, Memory, ToolResult
from resilience.settings import get_settings
from resilience.testing import ScriptedBackend, fail, hang, now, ok
from tests._examples import load_example

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

ROOT = Path(__file__).parent.parent
workflow_module = load_example("parallel_workflow")
BaseWorkflow = workflow_module.BaseWorkflow
STATE_KEYS = workflow_module.STATE_KEYS


class Agent:
    def __init__(self, *outcomes) -> None:
        self.backend = ScriptedBackend(list(outcomes) or [ok(None, after_s=0.3)])

    async def generate(self, query: str, context: Sequence[Document]) -> AgentResponse:
        await self.backend()
        return AgentResponse(f"answer to {query}", sources=tuple(context[:1]))


class Rag:
    def __init__(self, *outcomes) -> None:
        self.backend = ScriptedBackend(list(outcomes) or [ok(None, after_s=0.1)])

    async def retrieve(self, query: str, *, top_k: int) -> list[Document]:
        await self.backend()
        return [Document(f"about {query}", "doc-1")][:top_k]


class Tools:
    def __init__(self, *outcomes) -> None:
        self.backend = ScriptedBackend(list(outcomes) or [ok(None, after_s=0.2)])

    async def execute(self, tool: str, arguments: Mapping[str, object]) -> ToolResult:
        await self.backend()
        return ToolResult(f"{tool} done")


class MemoryStore:
    def __init__(self, *outcomes) -> None:
        self.backend = ScriptedBackend(list(outcomes) or [ok(None, after_s=0.05)])
        self.saved: list[Memory] = []

    async def search(self, query: str, *, limit: int) -> list[Memory]:
        await self.backend()
        return [Memory(f"remembered {query}")][:limit]

    async def save(self, memory: Memory) -> None:
        self.saved.append(memory)


class Stream:
    def __init__(self, *, broken: bool = False) -> None:
        self.events: list[Mapping[str, object]] = []
        self.broken = broken

    async def push(self, event: Mapping[str, object]) -> None:
        if self.broken:
            raise ConnectionError("client went away")
        self.events.append(event)


def build(mode: str = "full", **services):
    parts = {
        "agent_service": Agent(),
        "rag_service": Rag(),
        "tool_service": Tools(),
        "memory_service": MemoryStore(),
        "streaming_service": Stream(),
    }
    parts.update(services)
    return BaseWorkflow("assistant", mode, **parts), parts


FAULTS = {
    "healthy": {},
    "rag fails": {"rag_service": Rag(fail(ConnectionError("rag down")))},
    "tools hang": {"tool_service": Tools(hang())},
    "memory has a bug": {"memory_service": MemoryStore(fail(AttributeError("no .query on dict")))},
    "agent down": {"agent_service": Agent(fail(ConnectionError("llm down")))},
    "stream broken": {"streaming_service": Stream(broken=True)},
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("mode", ["chat", "rag", "tools", "full"])
async def test_every_mode_keeps_the_state_shape_under_faults(mode: str, fault: str) -> None:
    workflow, _ = build(mode, **copy.deepcopy(FAULTS[fault]))
    caller_state = {"session": {"user": "ada", "turn": 3}, "trace_id": "t-1"}
    before = copy.deepcopy(caller_state)
    state = await workflow.run("req-1", "what is a breaker?", caller_state)
    assert state is caller_state
    assert state.keys() >= STATE_KEYS
    assert {k: state[k] for k in before} == before  # undeclared keys unchanged
    assert set(state) == STATE_KEYS | set(before)  # and nothing else added


async def test_results_land_in_their_keys_when_healthy() -> None:
    workflow, parts = build("full")
    state = await workflow.run("req-1", "q")
    assert state["documents"] == [Document("about q", "doc-1")]
    assert state["tool_results"] == [ToolResult("web_search done")]
    assert state["memories"] == [Memory("remembered q")]
    assert state["answer"].text == "answer to q"
    assert state["citations"] == ["doc-1"]
    assert state["memory_saved"] is True
    assert state["stream_closed"] is True
    assert parts["memory_service"].saved == [Memory("answer to q", key="req-1")]
    retrieval = state["metadata"]["retrieval"]
    assert retrieval["mode"] == "parallel"
    assert retrieval["duration_s"] == pytest.approx(0.2)  # the slowest of 0.1, 0.2, 0.05
    assert now() == pytest.approx(0.2 + 0.3, abs=0.01)


async def test_faults_leave_defaults_in_the_failing_keys_only() -> None:
    workflow, _ = build(
        "full", rag_service=Rag(fail(ConnectionError())), tool_service=Tools(hang())
    )
    state = await workflow.run("req-1", "q")
    assert state["documents"] == []
    assert state["tool_results"] == []
    assert state["memories"] == [Memory("remembered q")]
    tasks = state["metadata"]["retrieval"]["tasks"]
    assert tasks["documents"]["status"] == "failed"
    assert tasks["tool_results"]["status"] in {"failed", "timeout"}
    assert tasks["memories"]["status"] == "ok"


async def test_modes_switch_retrieval_calls_on_and_off() -> None:
    workflow, parts = build("chat")
    state = await workflow.run("req-1", "q")
    assert parts["rag_service"].backend.call_count == 0
    assert parts["tool_service"].backend.call_count == 0
    tasks = state["metadata"]["retrieval"]["tasks"]
    assert tasks["documents"]["status"] == "skipped"
    assert tasks["tool_results"]["status"] == "skipped"


async def test_progress_is_pushed_to_the_client_as_it_happens() -> None:
    workflow, parts = build("full")
    await workflow.run("req-1", "q")
    names = [event["event"] for event in parts["streaming_service"].events]
    assert names[0] == "resilience.tier_started"
    assert "resilience.task_succeeded" in names
    assert "final" in names
    assert names[-1] == "resilience.tier_finished"


async def test_the_environment_switches_a_tier_to_sequential(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_TIERS__RETRIEVAL__PARALLEL", "false")
    get_settings.cache_clear()
    workflow, _ = build("full")
    state = await workflow.run("req-1", "q")
    retrieval = state["metadata"]["retrieval"]
    assert retrieval["mode"] == "sequential"
    assert retrieval["duration_s"] == pytest.approx(0.1 + 0.2 + 0.05)
    assert state["metadata"]["post_generation"]["mode"] == "parallel"


def test_bad_collaborators_fail_at_construction() -> None:
    class NoRetrieve:
        async def fetch(self, query: str) -> list[Document]:
            return []

    with pytest.raises(TypeError, match="rag_service"):
        build("full", rag_service=NoRetrieve())
    with pytest.raises(ValueError, match="mode"):
        build("turbo")


async def test_the_batch_absorbs_the_outage_and_every_response_has_every_key() -> None:
    result = await workflow_module.serve_batch(40, parallel=True)
    assert result.missing_keys == 0
    assert len(result.states) == 40
    assert any(e.name == "resilience.breaker_state_changed" for e in result.events)


def test_the_main_job_prints_the_report() -> None:
    """The README's main-job command itself, with a small batch."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "run-example"), "--requests", "12"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for heading in (
        "| retrieval | parallel |",
        "| retrieval | sequential |",
        "| post_generation | parallel |",
        "Faults absorbed",
        "Breaker transitions",
        "State check: 24/24 responses had every state key",
    ):
        assert heading in out
    assert "12/12" in done.stderr  # the progress bar ran


async def test_no_task_outlives_a_cancelled_request() -> None:
    workflow, _ = build("full", tool_service=Tools(hang()))
    request = asyncio.create_task(workflow.run("req-1", "q"))
    await asyncio.sleep(0.15)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
