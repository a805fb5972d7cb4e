"""The AI workflow that motivated the toolkit, rebuilt on it.

A request retrieves (tier 1: RAG, tools, memory search, in parallel), generates an answer
with the agent, then does its post-generation work (tier 2: save to memory, close the
stream, record citations and usage, in parallel). Every backend call runs through its
backend's policies as the environment configures them; a failed call leaves a fresh
safe default in its key; the state keeps its shape; progress is pushed to the streaming
service as it happens. ``RESILIENCE_TIERS__RETRIEVAL__PARALLEL=false`` switches a tier to
sequential without a code change.

Run ``bash scripts/run-example`` (or ``.venv/bin/python examples/parallel_workflow.py
--requests N``): it serves a batch of requests against simulated backends, one failing
part of the time and one going down mid-run, in parallel and in sequential mode, and
prints a report.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict, get_args

from adapters import (
    AgentResponse,
    AgentService,
    Document,
    Memory,
    MemoryService,
    RagService,
    StreamingService,
    ToolResult,
    ToolService,
    resilient,
    unavailable_answer,
)
from resilience import Pipeline, ResilienceSettings, compose, events, policy_for, safe_default
from resilience.testing import EventCapture, FlakyBackend, reset_state, run_simulated
from resilience.tiers import Task, Tier

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

Mode = Literal["chat", "rag", "tools", "full"]
#: Which tier-1 calls each mode makes (memory search always runs).
MODES: Mapping[str, tuple[bool, bool]] = {
    "chat": (False, False),
    "rag": (True, False),
    "tools": (False, True),
    "full": (True, True),
}


class WorkflowState(TypedDict):
    """One request's state: a plain dict, as the workflow always had it."""

    request_id: str
    query: str
    mode: str
    enable_rag: bool
    enable_tools: bool
    documents: list[Document]
    tool_results: list[ToolResult]
    memories: list[Memory]
    answer: AgentResponse
    memory_saved: bool
    stream_closed: bool
    citations: list[str]
    usage: dict[str, int]
    metadata: dict[str, Any]


#: Every key a finished request holds.
STATE_KEYS = frozenset(WorkflowState.__annotations__)


@dataclass(frozen=True)
class WorkflowConfig:
    """Knobs of the workflow itself; resilience options come from ``settings``."""

    top_k: int = 4
    memory_limit: int = 3
    tools: tuple[str, ...] = ("web_search",)
    settings: ResilienceSettings | None = None


class BaseWorkflow:
    """Tier 1 -> generation -> tier 2, each backend behind its policies.

    The services are checked against their protocols here, so a missing or misspelled
    method fails at construction, not in the middle of a request.
    """

    def __init__(  # noqa: PLR0917 - the workflow's seven collaborators, as it always took them
        self,
        workflow_name: str,
        mode: Mode,
        agent_service: AgentService,
        rag_service: RagService,
        tool_service: ToolService,
        memory_service: MemoryService,
        streaming_service: StreamingService,
        config: WorkflowConfig | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        for name, service, protocol in (
            ("agent_service", agent_service, AgentService),
            ("rag_service", rag_service, RagService),
            ("tool_service", tool_service, ToolService),
            ("memory_service", memory_service, MemoryService),
            ("streaming_service", streaming_service, StreamingService),
        ):
            if not isinstance(service, protocol):
                raise TypeError(f"{name} does not provide {protocol.__name__}'s methods")
        self.workflow_name = workflow_name
        self.mode = mode
        self.config = config or WorkflowConfig()
        settings = self.config.settings
        self._rag = rag_service
        self._tools = tool_service
        self._memory = memory_service
        # Calls outside the tiers go through the same per-backend policies.
        agent = resilient(agent_service, backend="agent", policy=_policy("agent", settings))
        self._generate = safe_default(unavailable_answer)(agent.generate)
        stream = resilient(
            streaming_service, backend="streaming", policy=_policy("streaming", settings)
        )
        self._push = safe_default(None)(stream.push)
        self.retrieval = Tier(
            "retrieval",
            [
                Task(
                    "documents",
                    self._retrieve,
                    default=list,
                    enabled="enable_rag",
                    backend="rag",
                    policy=_policy("rag", settings),
                ),
                Task(
                    "tool_results",
                    self._run_tools,
                    default=list,
                    enabled="enable_tools",
                    backend="tools",
                    policy=_policy("tools", settings),
                ),
                Task(
                    "memories",
                    self._recall,
                    default=list,
                    backend="memory",
                    policy=_policy("memory", settings),
                ),
            ],
            settings=settings,
        )
        self.post_generation = Tier(
            "post_generation",
            [
                Task(
                    "memory_saved",
                    self._remember,
                    default=False,
                    backend="memory",
                    policy=_policy("memory", settings),
                ),
                Task(
                    "stream_closed",
                    self._close_stream,
                    default=False,
                    backend="streaming",
                    policy=_policy("streaming", settings),
                ),
                Task("citations", _citations, default=list, backend="local", policy=_LOCAL),
                Task("usage", _usage, default=dict, backend="local", policy=_LOCAL),
            ],
            settings=settings,
        )

    def initial_state(
        self, request_id: str, query: str, state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A request's state before any step ran (``state``: the caller's own dict to fill)."""
        enable_rag, enable_tools = MODES[self.mode]
        state = {} if state is None else state
        state.update(
            request_id=request_id,
            query=query,
            mode=self.mode,
            enable_rag=enable_rag,
            enable_tools=enable_tools,
        )
        return state

    async def run(
        self, request_id: str, query: str, state: dict[str, Any] | None = None
    ) -> WorkflowState:
        """Serve one request; every key of :class:`WorkflowState` is set afterwards.

        Pass ``state`` to run on a dict of your own: keys the workflow does not declare
        are left exactly as they were.
        """
        state = self.initial_state(request_id, query, state)
        await self.run_tier(self.retrieval, state)
        await self.generate(state)
        await self.run_tier(self.post_generation, state)
        return state  # type: ignore[return-value]  # every declared key is now set

    async def generate(self, state: dict[str, Any]) -> dict[str, Any]:
        """The agent step: an answer grounded in tier 1's results (or a degraded stand-in)."""
        context = [*state["documents"], *(Document(m.content, "memory") for m in state["memories"])]
        state["answer"] = await self._generate(state["query"], context)
        return {"answer": state["answer"]}

    async def run_tier(self, tier: Tier, state: dict[str, Any]) -> None:
        """Run ``tier`` on ``state``, pushing each progress event to the client as it happens."""
        async with tier.stream(state) as progress:
            async for event in progress:
                await self._push(
                    {"request_id": state["request_id"], **event.fields(), "event": event.name}
                )

    async def _retrieve(self, state: Mapping[str, Any]) -> list[Document]:
        return await self._rag.retrieve(state["query"], top_k=self.config.top_k)

    async def _run_tools(self, state: Mapping[str, Any]) -> list[ToolResult]:
        return [
            await self._tools.execute(tool, {"query": state["query"]}) for tool in self.config.tools
        ]

    async def _recall(self, state: Mapping[str, Any]) -> list[Memory]:
        return await self._memory.search(state["query"], limit=self.config.memory_limit)

    async def _remember(self, state: Mapping[str, Any]) -> bool:
        answer: AgentResponse = state["answer"]
        if answer.degraded:
            return False
        await self._memory.save(Memory(answer.text, key=state["request_id"]))
        return True

    async def _close_stream(self, state: Mapping[str, Any]) -> bool:
        await self._push(
            {"request_id": state["request_id"], "event": "final", "answer": state["answer"].text}
        )
        return True


#: Local steps need no backend policies, only the tier's isolation.
_LOCAL = compose()


def _policy(backend: str, settings: ResilienceSettings | None) -> Pipeline:
    return policy_for(backend, settings=settings)


async def _citations(state: Mapping[str, Any]) -> list[str]:
    return [doc.source for doc in state["answer"].sources]


async def _usage(state: Mapping[str, Any]) -> dict[str, int]:
    prompt = len(state["query"].split()) + sum(len(d.content.split()) for d in state["documents"])
    return {"prompt_tokens": prompt, "completion_tokens": len(state["answer"].text.split())}


# --- Simulated backends: latency distributions and fault injection ---------------------


class SimulatedAgent:
    """An LLM: ~300 ms per answer."""

    def __init__(self, seed: int) -> None:
        self._call = FlakyBackend(result=self._answer, latency=_lognormal(0.3), seed=seed)

    @staticmethod
    def _answer(query: str, context: Sequence[Document]) -> AgentResponse:
        return AgentResponse(f"An answer to {query!r}.", sources=tuple(context[:2]))

    async def generate(self, query: str, context: Sequence[Document]) -> AgentResponse:
        """Answer ``query`` from ``context``."""
        return await self._call(query, context)


class SimulatedRag:
    """A retriever: ~80 ms, and it fails ``failure_rate`` of its calls."""

    def __init__(self, seed: int, failure_rate: float) -> None:
        self.backend = FlakyBackend(
            result=self._documents, latency=_lognormal(0.08), failure_rate=failure_rate, seed=seed
        )

    @staticmethod
    def _documents(query: str, top_k: int) -> list[Document]:
        return [Document(f"passage {i} on {query}", f"doc-{i}", 1 / (i + 1)) for i in range(top_k)]

    async def retrieve(self, query: str, *, top_k: int) -> list[Document]:
        """The ``top_k`` best passages."""
        return await self.backend(query, top_k)


class SimulatedTools:
    """A tool executor: ~120 ms; set ``backend.down`` for an outage (calls hang)."""

    def __init__(self, seed: int) -> None:
        self.backend = FlakyBackend(
            result=lambda tool, _: ToolResult(f"{tool} ok"), latency=_lognormal(0.12), seed=seed
        )

    async def execute(self, tool: str, arguments: Mapping[str, object]) -> ToolResult:
        """Run one tool."""
        return await self.backend(tool, arguments)


class SimulatedMemory:
    """A memory store: ~40 ms searches and saves."""

    def __init__(self, seed: int) -> None:
        self._search = FlakyBackend(
            result=lambda query, limit: [Memory(f"earlier: {query}")][:limit],
            latency=_lognormal(0.04),
            seed=seed,
        )
        self._save = FlakyBackend(result=_ignore, latency=_lognormal(0.04), seed=seed + 1)
        self.saved = 0

    async def search(self, query: str, *, limit: int) -> list[Memory]:
        """Memories about ``query``."""
        return await self._search(query, limit)

    async def save(self, memory: Memory) -> None:
        """Store one memory."""
        await self._save(memory)
        self.saved += 1


class SimulatedStream:
    """A client connection: ~1 ms per pushed event."""

    def __init__(self) -> None:
        self.pushed: list[Mapping[str, object]] = []

    async def push(self, event: Mapping[str, object]) -> None:
        """Send one event to the client."""
        await asyncio.sleep(0.001)
        self.pushed.append(event)


def _ignore(_: object) -> None:
    """A save's result: nothing."""


def _lognormal(median_s: float) -> Callable[[Any], float]:

    mu = math.log(median_s)
    return lambda rng: rng.lognormvariate(mu, 0.4)


@dataclass
class Services:
    """The five simulated backends of one run."""

    agent: SimulatedAgent
    rag: SimulatedRag
    tools: SimulatedTools
    memory: SimulatedMemory
    stream: SimulatedStream


def simulated_services(seed: int = 7, rag_failure_rate: float = 0.15) -> Services:
    """Backends with realistic latencies; RAG fails ``rag_failure_rate`` of its calls."""
    return Services(
        SimulatedAgent(seed),
        SimulatedRag(seed + 1, rag_failure_rate),
        SimulatedTools(seed + 2),
        SimulatedMemory(seed + 3),
        SimulatedStream(),
    )


# --- The main job: a batch of requests, then a report -----------------------------------


@dataclass
class BatchResult:
    """What one batch measured."""

    tier_durations: dict[str, list[float]]
    tier_speedups: dict[str, list[float]]
    states: list[dict[str, Any]]
    events: list[events.Event]
    missing_keys: int


async def serve_batch(
    requests: int,
    *,
    parallel: bool,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> BatchResult:
    """Serve ``requests`` requests, cycling through the four modes, on simulated time.

    RAG fails 15% of its calls throughout; the tool backend hangs for the middle fifth
    of the batch (an outage the breaker and timeouts must absorb).
    """
    reset_state()
    services = simulated_services(seed)
    settings = ResilienceSettings(
        tiers={tier: {"parallel": parallel} for tier in ("retrieval", "post_generation")},
        backends={
            "tools": {
                "timeout_s": 1.0,
                "breaker_failure_threshold": 3,
                "breaker_reset_timeout_s": 5.0,
            }
        },
    )
    config = WorkflowConfig(settings=settings)
    workflows = {
        mode: BaseWorkflow(
            "assistant",
            mode,
            services.agent,
            services.rag,
            services.tools,
            services.memory,
            services.stream,
            config,
        )
        for mode in get_args(Mode)
    }
    durations: dict[str, list[float]] = {"retrieval": [], "post_generation": []}
    speedups: dict[str, list[float]] = {"retrieval": [], "post_generation": []}
    states = []
    missing = 0
    with EventCapture() as captured:
        for i in range(requests):
            services.tools.backend.down = 0.4 <= i / requests < 0.6
            mode = get_args(Mode)[i % 4]
            state = await workflows[mode].run(f"req-{i}", f"question {i}")
            missing += not state.keys() >= STATE_KEYS
            for tier, tier_durations in durations.items():
                tier_durations.append(state["metadata"][tier]["duration_s"])
                speedups[tier].append(state["metadata"][tier]["speedup"])
            states.append(dict(state))
            if progress is not None:
                progress(i + 1)
            await asyncio.sleep(0.05)  # requests arrive 50 ms apart
    return BatchResult(durations, speedups, states, captured.events, missing)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(parallel: BatchResult, sequential: BatchResult) -> str:
    """The main job's report: latency per tier and mode, faults absorbed, breaker, state check."""
    lines = [
        "",
        "Tier latency (simulated ms)",
        "",
        "| tier | mode | p50 | p99 | mean speedup |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for tier in ("retrieval", "post_generation"):
        for mode, result in (("parallel", parallel), ("sequential", sequential)):
            d = result.tier_durations[tier]
            speedup = sum(result.tier_speedups[tier]) / len(d)
            lines.append(
                f"| {tier} | {mode} | {_percentile(d, 0.5) * 1000:.1f} "
                f"| {_percentile(d, 0.99) * 1000:.1f} | {speedup:.2f} |"
            )
    p50_gain = _percentile(sequential.tier_durations["retrieval"], 0.5) / _percentile(
        parallel.tier_durations["retrieval"], 0.5
    )
    lines += ["", f"Retrieval tier p50: parallel is {p50_gain:.2f}x faster than sequential.", ""]
    counts = Counter(e.name for e in parallel.events)
    statuses = Counter(
        task["status"]
        for state in parallel.states
        for tier in ("retrieval", "post_generation")
        for task in state["metadata"][tier]["tasks"].values()
    )
    lines += [
        "Faults absorbed (parallel run)",
        f"  retry:           {counts[events.RETRY_SCHEDULED]} retries scheduled",
        f"  timeout:         {counts[events.TIMED_OUT]} attempts timed out",
        f"  circuit breaker: {counts[events.BREAKER_REJECTED]} calls rejected while open",
        f"  safe default:    {counts[events.FELL_BACK]} calls answered by a default",
        (
            f"  tier tasks:      ok {statuses['ok']}, failed {statuses['failed']}, "
            f"fell back {statuses['fallback']}, timed out {statuses['timeout']}, "
            f"skipped {statuses['skipped']}"
        ),
        "",
        "Breaker transitions (parallel run)",
    ]
    for event in parallel.events:
        if isinstance(event, events.BreakerStateChanged):
            lines.append(f"  {event.backend}: {event.old} -> {event.new}")
    total = len(parallel.states) + len(sequential.states)
    missing = parallel.missing_keys + sequential.missing_keys
    checked = f"{total - missing}/{total} responses had every state key ({len(STATE_KEYS)} keys)"
    lines += ["", f"State check: {checked}."]
    return "\n".join(lines)


def _progress_bar(total: int, label: str) -> Callable[[int], None]:
    """A one-line bar on stderr, redrawn only when it grows (a plain line when not a tty)."""
    width = 30
    drawn = -1
    live = sys.stderr.isatty()

    def show(done: int) -> None:
        nonlocal drawn
        filled = done * width // total
        if filled == drawn and done != total:
            return
        drawn = filled
        if live or done == total:
            bar = "#" * filled + "." * (width - filled)
            sys.stderr.write(
                f"\r{label:<10} [{bar}] {done}/{total}{'' if done < total else chr(10)}"
            )
            sys.stderr.flush()

    return show


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a batch in parallel and in sequential mode, then print the report."""
    parser = argparse.ArgumentParser(description="The parallel workflow on simulated backends.")
    parser.add_argument(
        "--requests",
        type=int,
        default=200,
        help="requests per tier mode (parallel, then sequential)",
    )
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    events.remove_observer(events.log_event)  # the report says it all
    try:
        runs = {
            parallel: run_simulated(
                serve_batch(
                    args.requests,
                    parallel=parallel,
                    progress=_progress_bar(args.requests, "parallel" if parallel else "sequential"),
                )
            )
            for parallel in (True, False)
        }
    finally:
        events.add_observer(events.log_event)
    print(
        f"Parallel workflow: {args.requests} requests with parallel tiers and {args.requests} "
        "with sequential tiers, cycling through the modes chat, rag, tools and full"
    )
    print(report(runs[True], runs[False]))


if __name__ == "__main__":
    main()
