"""Checked by mypy (strict): a wrapped service is still its own type to callers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters import (
    SAFE_DEFAULTS,
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
)
from adapters.http import HttpBackend, HttpError, HttpTransientError
from resilience import TransientError, compose, timeout

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import httpx


class Retriever:
    """Satisfies RagService by shape, with a sync helper and a property."""

    def __init__(self) -> None:
        self.index = "docs"

    @property
    def size(self) -> int:
        return 0

    def name(self) -> str:
        return self.index

    async def retrieve(self, query: str, *, top_k: int) -> list[Document]:
        return [Document(query)] * top_k


class Agent:
    async def generate(self, query: str, context: Sequence[Document]) -> AgentResponse:
        return AgentResponse(query, tuple(context))


class Tools:
    async def execute(self, tool: str, arguments: Mapping[str, object]) -> ToolResult:
        return ToolResult({tool: dict(arguments)})


class Memories:
    async def search(self, query: str, *, limit: int) -> list[Memory]:
        return [Memory(query)] * limit

    async def save(self, memory: Memory) -> None:
        del memory


class Stream:
    async def push(self, event: Mapping[str, object]) -> None:
        del event


async def wrapped_services_keep_their_types() -> None:
    rag = resilient(Retriever(), backend="rag", methods={"retrieve": compose(timeout(2))})
    docs: list[Document] = await rag.retrieve("q", top_k=3)
    size: int = rag.size
    name: str = rag.name()
    index: str = rag.index
    as_protocol: RagService = rag

    agent: AgentService = resilient(Agent(), backend="agent")
    answer: AgentResponse = await agent.generate("q", docs)
    tools: ToolService = resilient(Tools(), backend="tools")
    result: ToolResult = await tools.execute("calc", {"x": 1})
    memory: MemoryService = resilient(Memories(), backend="memory", no_retry={"save"})
    found: list[Memory] = await memory.search("q", limit=2)
    await memory.save(Memory("m", key="k"))
    stream: StreamingService = resilient(Stream(), backend="stream", exclude=["push"])
    await stream.push({"type": "progress"})
    defaults: Mapping[str, object] = SAFE_DEFAULTS[RagService]
    del size, name, index, as_protocol, answer, result, found, defaults


async def http_backend_calls_are_typed(client: httpx.AsyncClient) -> None:
    http = HttpBackend(client, backend="api", policy=timeout(1))
    response: httpx.Response = await http.get("/items", params={"q": "x", "n": 3})
    created: httpx.Response = await http.post(
        "/items", json={"id": 1}, headers={"Idempotency-Key": "k"}, idempotent=True
    )
    sent: httpx.Response = await http.send(client.build_request("DELETE", "/items/1"))
    try:
        await http.put("/items/1", content=b"v")
    except HttpTransientError as exc:
        transient: TransientError = exc
        hint: float | None = exc.retry_after_s
        del transient, hint
    except HttpError as exc:
        status: int | None = exc.status
        del status
    del response, created, sent
