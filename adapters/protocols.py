"""The five kinds of backend a request fans out to, and what each falls back to.

Protocols rather than base classes: an existing client satisfies them by shape, so a
workflow can type its backends without touching them. Payloads are small frozen
dataclasses, so a safe default handed to many requests cannot be mutated by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


@dataclass(frozen=True, slots=True)
class Document:
    """One retrieved passage."""

    content: str
    source: str = ""
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class AgentResponse:
    """A generated answer; ``degraded`` marks a stand-in produced without the model."""

    text: str
    sources: tuple[Document, ...] = ()
    degraded: bool = False


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool returned, or why it could not run (``ok`` false)."""

    output: object = None
    ok: bool = True
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Memory:
    """One remembered item."""

    content: str
    key: str | None = None
    tags: tuple[str, ...] = ()


@runtime_checkable
class AgentService(Protocol):
    """An LLM agent: answers a query from retrieved context."""

    async def generate(self, query: str, context: Sequence[Document]) -> AgentResponse:
        """The answer to ``query`` grounded in ``context``."""
        ...


@runtime_checkable
class RagService(Protocol):
    """A retriever: the passages most relevant to a query."""

    async def retrieve(self, query: str, *, top_k: int) -> list[Document]:
        """At most ``top_k`` documents, best first."""
        ...


@runtime_checkable
class ToolService(Protocol):
    """A tool executor: runs a named tool with arguments."""

    async def execute(self, tool: str, arguments: Mapping[str, object]) -> ToolResult:
        """Run ``tool``; a tool's own failure is an ``ok=False`` result, not an exception."""
        ...


@runtime_checkable
class MemoryService(Protocol):
    """A memory store: search past items and save new ones."""

    async def search(self, query: str, *, limit: int) -> list[Memory]:
        """At most ``limit`` memories relevant to ``query``."""
        ...

    async def save(self, memory: Memory) -> None:
        """Store ``memory`` (not idempotent unless it carries a ``key``)."""
        ...


@runtime_checkable
class StreamingService(Protocol):
    """A streaming sink: pushes progress events to the client."""

    async def push(self, event: Mapping[str, object]) -> None:
        """Send one event."""
        ...


def unavailable_answer() -> AgentResponse:
    """The agent's stand-in: an empty, degraded answer the caller can detect."""
    return AgentResponse(text="", degraded=True)


def unavailable_tool() -> ToolResult:
    """The tool executor's stand-in: a failed result instead of an exception."""
    return ToolResult(ok=False, error="tool unavailable")


def nothing() -> None:
    """The stand-in for calls whose result nobody reads (saves, pushes)."""


#: Protocol -> method -> zero-argument factory of the value a failed call falls back to.
#: Factories, so every failure gets a fresh value (``safe_default(factory)``).
SAFE_DEFAULTS: Final[Mapping[type, Mapping[str, Callable[[], object]]]] = MappingProxyType(
    {
        AgentService: MappingProxyType({"generate": unavailable_answer}),
        RagService: MappingProxyType({"retrieve": list}),
        ToolService: MappingProxyType({"execute": unavailable_tool}),
        MemoryService: MappingProxyType({"search": list, "save": nothing}),
        StreamingService: MappingProxyType({"push": nothing}),
    }
)
