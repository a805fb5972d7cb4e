"""LangGraph nodes that run a tier, so one failing backend costs its key, not the graph.

Parallel branches of a plain ``StateGraph`` run in one super-step, and when one node
raises, the step fails and ``ainvoke`` raises: the siblings' results are lost with it.
A tier node runs the same calls inside one node, each behind its policies and isolated,
and returns one update: every task key (result or fresh default) and ``metadata``.

Needs the ``langgraph`` extra; import this module on its own (``adapters`` does not).

State channels
    ``Tier.updates`` returns ``metadata`` as the state's whole dict plus the tier's entry.
    On a plain key (LangGraph's ``LastValue`` channel) that is right for tiers that run
    one after another, but two tier nodes in the same super-step both write the key, and
    LangGraph rejects the step with ``InvalidUpdateError`` ("Can receive only one value
    per step"). Declare the key with the reducer instead::

        metadata: Annotated[dict[str, Any], merge_metadata]

    Keys the state schema does not declare are dropped by LangGraph without a word;
    :func:`add_tier` checks the tier's keys against the graph when it adds the node.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from langgraph.config import get_stream_writer
from langgraph.graph import StateGraph
from pydantic import BaseModel

from resilience.tiers import Tier
from resilience.tiers.task import METADATA

if TYPE_CHECKING:
    from resilience.events import Event
    from resilience.tiers import ProgressCallback

__all__ = ["TierNode", "add_tier", "merge_metadata", "tier_node"]


class TierNode(Protocol):
    """A graph node: the state in, the tier's partial update out."""

    __name__: str

    async def __call__(self, state: Any) -> dict[str, Any]:  # noqa: ANN401 - any state schema
        """Run the tier on ``state``."""
        ...


G = TypeVar("G", bound=StateGraph[Any, Any, Any, Any])


def tier_node(tier: Tier, *, stream_progress: bool = False) -> TierNode:
    """An async node that runs ``tier`` on the graph's state and returns its update.

    The node is named after the tier, so ``graph.add_node(tier_node(retrieval))`` adds a
    node ``"retrieval"``. The state may be a dict (``TypedDict`` schema), a pydantic model
    or a dataclass; tasks see it as a mapping either way. With ``stream_progress`` each
    progress event goes to LangGraph's custom stream (``stream_mode="custom"``) as
    ``{**event.fields(), "event": event.name}``, so a client sees tasks finish while
    the node runs.
    """
    if not isinstance(tier, Tier):
        raise TypeError(f"tier_node needs a resilience Tier, got {tier!r}")

    async def node(state: Any) -> dict[str, Any]:  # noqa: ANN401 - the graph's state type
        on_event = _progress_writer() if stream_progress else None
        return await tier.updates(_as_mapping(state, tier), on_event=on_event)

    node.__name__ = node.__qualname__ = tier.name
    node.__doc__ = f"Run tier {tier.name!r}: its task keys and metadata, defaults for failures."
    return node


def add_tier(graph: G, tier: Tier, *, name: str | None = None, stream_progress: bool = False) -> G:
    """Add :func:`tier_node` for ``tier`` to ``graph`` (as ``name``, default the tier's name).

    Raises ``ValueError`` naming every task key (and ``metadata``) the graph's state does
    not declare: LangGraph would drop those writes silently and the key would never be set.
    """
    node = tier_node(tier, stream_progress=stream_progress)
    declared = graph.channels
    missing = [key for key in (*(task.key for task in tier.tasks), METADATA) if key not in declared]
    if missing:
        raise ValueError(
            f"tier {tier.name!r} writes {missing!r}, which the graph's state does not declare; "
            "LangGraph would drop those updates"
        )
    graph.add_node(name or tier.name, node)
    return graph


def merge_metadata(
    current: Mapping[str, Any] | None, update: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Reducer for the ``metadata`` key: entries of ``update`` over those of ``current``.

    Tiers in one super-step each send the state's metadata plus their own entry; merging
    by top-level key keeps every tier's entry (a tier that runs again replaces its own).
    Returns a new dict: LangGraph may still hold ``current`` in an earlier checkpoint.
    Send ``langgraph.types.Overwrite(value)`` to replace the whole dict instead.
    """
    merged: dict[str, Any] = {}
    for side, value in (("current", current), ("update", update)):
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise TypeError(f"metadata must be a dict, got {type(value).__name__} as {side}")
        merged.update(value)
    return merged


def _as_mapping(state: object, tier: Tier) -> Mapping[str, Any]:
    """The state as tasks read it: a mapping, fields read shallowly from a model."""
    if isinstance(state, Mapping):
        return state
    if isinstance(state, BaseModel):
        return dict(state)  # fields and extras, values as they are (no dump)
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return {field.name: getattr(state, field.name) for field in dataclasses.fields(state)}
    raise TypeError(
        f"tier {tier.name!r} needs the graph state as a dict (TypedDict), a pydantic model "
        f"or a dataclass, got {type(state).__name__}"
    )


def _progress_writer() -> ProgressCallback:
    """Progress events to the running graph's custom stream."""
    write = get_stream_writer()

    def on_event(event: Event) -> None:
        write({**event.fields(), "event": event.name})

    return on_event
