"""The parallel workflow as a LangGraph graph: the same tiers, now graph nodes.

``START -> retrieval -> generate -> post_generation -> END``: the two tiers of
``parallel_workflow.BaseWorkflow`` become nodes with ``adapters.langgraph.add_tier`` and
its ``generate`` step a plain node, on the workflow's own ``WorkflowState``. The RAG
backend is down for the whole run: its calls fail, are retried, open its breaker, and
every response still arrives with every state key, the documents key holding its default.
Tier progress goes to LangGraph's custom stream and from there to the client's stream.

The tiers here run one after the other, so a plain ``metadata`` key is enough; for tiers
fanned out side by side, declare it ``Annotated[dict[str, Any], merge_metadata]``.

Run ``.venv/bin/python examples/langgraph_workflow.py [--requests N]`` (needs the
``langgraph`` extra); it runs on simulated time, so the retries cost no real time.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langgraph.graph import END, START, StateGraph

from adapters.langgraph import add_tier
from resilience import events
from resilience.testing import reset_state, run_simulated

try:  # run as a program, examples/ is on sys.path
    from parallel_workflow import STATE_KEYS, BaseWorkflow, WorkflowState, simulated_services
except ModuleNotFoundError as exc:  # imported from the repository root
    if exc.name != "parallel_workflow":
        raise
    from examples.parallel_workflow import (
        STATE_KEYS,
        BaseWorkflow,
        WorkflowState,
        simulated_services,
    )

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langgraph.graph.state import CompiledStateGraph


def build_graph(workflow: BaseWorkflow) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The workflow's steps as graph nodes; ``add_tier`` checks the tiers' keys exist."""
    graph = StateGraph(WorkflowState)
    add_tier(graph, workflow.retrieval, stream_progress=True)
    graph.add_node("generate", workflow.generate)
    add_tier(graph, workflow.post_generation, stream_progress=True)
    graph.add_edge(START, "retrieval")
    graph.add_edge("retrieval", "generate")
    graph.add_edge("generate", "post_generation")
    graph.add_edge("post_generation", END)
    return graph.compile()


@dataclass
class Response:
    """One served request: the final state, when it finished, what was streamed."""

    state: dict[str, Any]
    finished_at: float
    progress_events: int


async def serve(requests: int = 4, *, seed: int = 7) -> list[Response]:
    """Serve ``requests`` requests in ``full`` mode with RAG down, on the running loop."""
    reset_state()
    services = simulated_services(seed, rag_failure_rate=1.0)
    workflow = BaseWorkflow(
        "assistant",
        "full",
        services.agent,
        services.rag,
        services.tools,
        services.memory,
        services.stream,
    )
    graph = build_graph(workflow)
    loop = asyncio.get_running_loop()
    responses = []
    for i in range(requests):
        request_id = f"req-{i}"
        state = workflow.initial_state(request_id, f"question {i}")
        streamed = 0
        async for mode, chunk in graph.astream(state, stream_mode=["custom", "values"]):
            if mode == "custom":  # tier progress, forwarded to the client as it happens
                await services.stream.push({"request_id": request_id, **chunk})
                streamed += 1
            else:
                state = chunk
        responses.append(Response(dict(state), loop.time(), streamed))
        await asyncio.sleep(0.05)  # requests arrive 50 ms apart
    return responses


def describe(response: Response) -> list[str]:
    """A response's answer, its keys, and each tier's metadata in one line."""
    state = response.state
    answer = state["answer"]
    lines = [
        (
            f"{state['request_id']} at t={response.finished_at:.3f}s: "
            f"{len(STATE_KEYS & state.keys())}/{len(STATE_KEYS)} state keys, "
            f"{response.progress_events} progress events streamed"
        ),
        f"  answer: {answer.text!r}{' (degraded)' if answer.degraded else ''}",
        (
            f"  documents={len(state['documents'])} tool_results={len(state['tool_results'])} "
            f"memories={len(state['memories'])} citations={state['citations']}"
        ),
    ]
    for tier in ("retrieval", "post_generation"):
        entry = state["metadata"][tier]
        problems = [
            f"{key}: {task['status']} ({task['error']}, attempts: {task['attempts']})"
            for key, task in entry["tasks"].items()
            if task["status"] != "ok"
        ]
        lines.append(
            f"  {tier:<15} {entry['mode']:<10} {entry['duration_s'] * 1000:6.1f} ms  "
            f"ok {entry['succeeded']}, failed {entry['failed']}, skipped {entry['skipped']}"
            + (f"  [{'; '.join(problems)}]" if problems else "")
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a few requests through the graph on simulated time and print each response."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4, help="requests to serve")
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    events.remove_observer(events.log_event)  # the lines below say it all
    try:
        responses = run_simulated(serve(args.requests))
    finally:
        events.add_observer(events.log_event)
    print(f"LangGraph workflow: {args.requests} requests, RAG backend down throughout")
    for response in responses:
        print("\n".join(describe(response)))
    complete = sum(response.state.keys() >= STATE_KEYS for response in responses)
    print(f"State check: {complete}/{len(responses)} responses had every state key.")


if __name__ == "__main__":
    main()
