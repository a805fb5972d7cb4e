"""Backend adapters the resilience policies wrap: a generic proxy and concrete backends.

``adapters.http`` needs httpx (the ``http`` extra) and ``adapters.langgraph`` needs
langgraph (the ``langgraph`` extra); each is imported on its own, so the rest of the
package works without them.
"""

from adapters.protocols import (
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
    nothing,
    unavailable_answer,
    unavailable_tool,
)
from adapters.resilient import resilient

__all__ = [
    "SAFE_DEFAULTS",
    "AgentResponse",
    "AgentService",
    "Document",
    "Memory",
    "MemoryService",
    "RagService",
    "StreamingService",
    "ToolResult",
    "ToolService",
    "nothing",
    "resilient",
    "unavailable_answer",
    "unavailable_tool",
]
