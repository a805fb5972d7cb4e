"""Property: whatever the state and whatever the tasks do, the state keeps its shape.

Random states (extra keys, nested metadata, TypedDict-shaped or plain) meet random task
outcomes (success, exception, a backend cancelling itself, hang) and, at random, the
caller cancelling the tier. Afterwards every declared key is present (or, after the
caller's cancellation, none was written), every undeclared key is unchanged, and no task
is left running.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from typing import Any, TypedDict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resilience import compose
from resilience.tiers import Task, Tier

DECLARED = ("rag_context", "tool_results", "memories", "citations")
NO_POLICY = compose()


class ChatState(TypedDict, total=False):
    query: str
    enable_rag: bool
    user_id: int
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    kind: str  # ok, error, self_cancel, hang
    after_s: float


json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
extra_keys = st.text(min_size=1, max_size=8).filter(lambda key: key not in (*DECLARED, "metadata"))
metadata = st.none() | st.dictionaries(st.text(min_size=1, max_size=6), json_value, max_size=3)


@st.composite
def states(draw) -> dict[str, Any]:
    if draw(st.booleans()):
        state: dict[str, Any] = ChatState(
            query=draw(st.text(max_size=10)),
            enable_rag=draw(st.booleans()),
            user_id=draw(st.integers()),
        )
    else:
        state = {}
    state.update(draw(st.dictionaries(extra_keys, json_value, max_size=4)))
    meta = draw(metadata)
    if meta is not None or draw(st.booleans()):
        state["metadata"] = meta
    return state


outcomes = st.builds(
    Outcome,
    st.sampled_from(["ok", "error", "self_cancel", "hang"]),
    st.sampled_from([0.0, 0.1, 0.2, 0.3]),
)


def backend(outcome: Outcome, result: str):
    async def call(state: Any) -> str:
        if outcome.kind == "hang":
            await asyncio.Event().wait()
        await asyncio.sleep(outcome.after_s)
        if outcome.kind == "error":
            raise ConnectionError(result)
        if outcome.kind == "self_cancel":
            raise asyncio.CancelledError
        return result

    return call


def expected_statuses(outcomes_by_key, enabled, *, parallel, timeout_s) -> dict[str, str]:
    statuses = {}
    clock = 0.0
    for key, outcome in outcomes_by_key.items():
        if not enabled[key]:
            statuses[key] = "skipped"
            continue
        finish = float("inf") if outcome.kind == "hang" else outcome.after_s
        if not parallel:
            finish += clock
            clock = finish
        if finish >= timeout_s:
            statuses[key] = "timeout"
        else:
            statuses[key] = "ok" if outcome.kind == "ok" else "failed"
    return statuses


@dataclass(frozen=True)
class Scenario:
    outcomes: dict[str, Outcome]
    enabled: dict[str, bool]
    parallel: bool
    timeout_s: float
    cancel_at: float | None  # the caller cancels the tier then (None: never)


@st.composite
def scenarios(draw) -> Scenario:
    picked = draw(st.lists(outcomes, min_size=1, max_size=len(DECLARED)))
    keys = DECLARED[: len(picked)]
    return Scenario(
        outcomes=dict(zip(keys, picked, strict=True)),
        enabled={key: draw(st.booleans()) for key in keys},
        parallel=draw(st.booleans()),
        timeout_s=draw(st.sampled_from([0.25, 0.45, 0.65, 5.0])),
        cancel_at=draw(st.none() | st.sampled_from([0.0, 0.15, 0.35, 10.0])),
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(state=states(), scenario=scenarios())
async def test_declared_keys_present_undeclared_unchanged_nothing_left_running(
    state, scenario
) -> None:
    keys = tuple(scenario.outcomes)
    switch = {key: f"enable_{key}" for key in keys}
    for key, on in scenario.enabled.items():
        if not on:
            state[switch[key]] = False
    tier = Tier(
        "tier",
        [
            Task(
                key,
                backend(outcome, f"{key}-result"),
                default=list,
                enabled=switch[key],
                policy=NO_POLICY,
            )
            for key, outcome in scenario.outcomes.items()
        ],
        parallel=scenario.parallel,
        timeout_s=scenario.timeout_s,
    )
    before = copy.deepcopy(state)
    existing_metadata = state.get("metadata")
    run = asyncio.create_task(tier.run(state))
    cancelled = False
    if scenario.cancel_at is not None:
        await asyncio.sleep(scenario.cancel_at)
        cancelled = run.cancel()
    try:
        async with asyncio.timeout(60):  # a deadline that never fires fails, not hangs
            await run
    except asyncio.CancelledError:
        assert cancelled
    current = asyncio.current_task()
    assert [task for task in asyncio.all_tasks() if task is not current and not task.done()] == []

    if run.cancelled():
        assert state == before
        return
    for key, value in before.items():
        if key != "metadata":
            assert state[key] == value
    assert set(state) == set(before) | set(keys) | {"metadata"}
    if existing_metadata is not None:
        assert state["metadata"] is existing_metadata
        assert {k: v for k, v in state["metadata"].items() if k != "tier"} == before["metadata"]
    on = {key: state.get(switch[key], True) for key in keys}
    statuses = expected_statuses(
        scenario.outcomes, on, parallel=scenario.parallel, timeout_s=scenario.timeout_s
    )
    meta = state["metadata"]["tier"]
    assert {key: task["status"] for key, task in meta["tasks"].items()} == statuses
    for key in keys:
        assert state[key] == (f"{key}-result" if statuses[key] == "ok" else [])
