"""Checked by mypy (strict): a tier keeps its state's type."""

from __future__ import annotations

from typing import Any, TypedDict, assert_type

from resilience.tiers import Task, Tier


class ChatState(TypedDict, total=False):
    query: str
    metadata: dict[str, Any]


async def rag(state: ChatState) -> list[str]:
    return [state["query"]]


async def main() -> None:
    tier = Tier("retrieval", [Task("rag_context", rag, default=list)])
    state: ChatState = {"query": "q"}
    assert_type(await tier.run(state), ChatState)
    assert_type(await tier.updates(state), dict[str, Any])
