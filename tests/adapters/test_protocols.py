"""The backend protocols, their payloads and the safe defaults they fall back to."""

from __future__ import annotations

import dataclasses

import pytest

import adapters
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
)
from resilience import compose, safe_default, timeout
from resilience.testing import ScriptedBackend, fail


def _isort_style(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_the_package_exports_a_sorted_all():
    assert adapters.__all__ == sorted(adapters.__all__, key=_isort_style)
    assert {name for name in dir(adapters) if not name.startswith("_")} >= set(adapters.__all__)
    assert set(adapters.__all__) == {
        "SAFE_DEFAULTS", "AgentResponse", "AgentService", "Document", "Memory", "MemoryService",
        "RagService", "StreamingService", "ToolResult", "ToolService", "nothing", "resilient",
        "unavailable_answer", "unavailable_tool",
    }  # fmt: skip


def test_every_protocol_method_has_a_safe_default():
    protocols = (AgentService, RagService, ToolService, MemoryService, StreamingService)
    assert set(SAFE_DEFAULTS) == set(protocols)
    for protocol in protocols:
        methods = {name for name, value in vars(protocol).items() if callable(value)}
        methods -= {name for name in methods if name.startswith("_")}
        assert set(SAFE_DEFAULTS[protocol]) == methods, protocol


@pytest.mark.parametrize(
    ("protocol", "method", "expected"),
    [
        (AgentService, "generate", AgentResponse(text="", degraded=True)),
        (RagService, "retrieve", []),
        (ToolService, "execute", ToolResult(ok=False, error="tool unavailable")),
        (MemoryService, "search", []),
        (MemoryService, "save", None),
        (StreamingService, "push", None),
    ],
)
def test_safe_defaults_are_fresh_values(protocol, method, expected):
    factory = SAFE_DEFAULTS[protocol][method]
    first, second = factory(), factory()
    assert first == second == expected
    if isinstance(first, list):
        assert first is not second


def test_payloads_are_frozen():
    document = Document("text", source="wiki", score=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        document.content = "other"
    assert Memory("m").tags == ()
    assert AgentResponse("a", (document,)).sources == (document,)


def test_services_satisfy_protocols_by_shape():
    class Sink:
        async def push(self, event):
            del event

    assert isinstance(Sink(), StreamingService)
    assert not isinstance(Sink(), RagService)


async def test_a_safe_default_from_the_table_stands_in_for_a_failed_call():
    backend = ScriptedBackend([fail(ConnectionError("down"))])
    guarded = compose(safe_default(SAFE_DEFAULTS[AgentService]["generate"]), timeout(1))(backend)
    assert await guarded("q", []) == AgentResponse(text="", degraded=True)
