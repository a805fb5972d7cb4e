"""compose() and stacked decorators: one code path, signatures kept, async only."""

from __future__ import annotations

import asyncio
import inspect
import random
from typing import TYPE_CHECKING

import pytest
from tenacity import wait_fixed

import resilience
from resilience import (
    CallContext,
    CircuitOpenError,
    Pipeline,
    circuit_breaker,
    compose,
    retry,
    safe_default,
    timeout,
)
from resilience.testing import Outcome, ScriptedBackend, fail, hang, now, ok

if TYPE_CHECKING:
    from collections.abc import Callable

SCENARIOS: dict[str, list[Outcome[str]]] = {
    "healthy": [ok("a", after_s=0.2)],
    "flaky then fine": [fail(ConnectionError()), ok("b"), fail(TimeoutError()), ok("c")],
    "slow beyond the timeout": [ok("late", after_s=3.0), ok("fast", after_s=0.1)],
    "hangs": [hang()],
    "down long enough to open the breaker": [fail(ConnectionError())] * 12 + [ok("back")],
    "a bug": [fail(TypeError("wrong argument"))],
    "a business error": [fail(ValueError("not found")), ok("after")],
}


def stacked(name: str) -> Callable[[ScriptedBackend[str]], Callable[[], object]]:
    def build(backend: ScriptedBackend[str]) -> Callable[[], object]:
        @safe_default("default")
        @retry(attempts=3, wait=wait_fixed(0.5))
        @circuit_breaker(name=name, failure_threshold=4, reset_timeout_s=10)
        @timeout(2)
        async def call() -> str:
            return await backend()

        return call

    return build


def composed(name: str) -> Callable[[ScriptedBackend[str]], Callable[[], object]]:
    pipeline = compose(
        safe_default("default"),
        retry(attempts=3, wait=wait_fixed(0.5)),
        circuit_breaker(name=name, failure_threshold=4, reset_timeout_s=10),
        timeout(2),
    )

    def build(backend: ScriptedBackend[str]) -> Callable[[], object]:
        async def call() -> str:
            return await backend()

        return pipeline(call)

    return build


async def play(script: list[Outcome[str]], build) -> list[tuple[float, str]]:
    random.seed(1)
    backend = ScriptedBackend(script)
    call = build(backend)
    start = now()
    trace = []
    for _ in range(8):
        try:
            result = await call()
        except Exception as exc:  # the trace compares outcomes, whatever they are
            result = type(exc).__name__
        trace.append((round(now() - start, 9), str(result)))
        await asyncio.sleep(3)
    return [*trace, (backend.call_count, "calls")]  # type: ignore[list-item]


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_stacked_decorators_and_compose_behave_identically(scenario: str) -> None:
    by_decorators = await play(SCENARIOS[scenario], stacked(f"{scenario}/stacked"))
    by_compose = await play(SCENARIOS[scenario], composed(f"{scenario}/composed"))
    assert by_decorators == by_compose
    assert len(by_decorators) == 9


async def test_scenarios_really_exercise_the_policies() -> None:
    trace = await play(SCENARIOS["down long enough to open the breaker"], composed("x"))
    outcomes = [result for _, result in trace[:-1]]
    assert outcomes[:2] == ["default", "default"]
    assert trace[-1][0] < 8 * 3  # the open breaker spared the backend calls


def test_plain_functions_are_rejected_when_decorated() -> None:
    def blocking() -> int:
        return 1

    with pytest.raises(TypeError, match="async"):
        timeout(1)(blocking)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="async"):
        compose(retry(), timeout(1))(blocking)  # type: ignore[arg-type]


def test_compose_takes_only_policies() -> None:
    with pytest.raises(TypeError, match="takes policies"):
        compose(timeout(1), "retry")  # type: ignore[arg-type]


async def test_async_callable_objects_are_accepted() -> None:
    backend = ScriptedBackend([ok(7)])
    assert await timeout(1)(backend)() == 7


async def test_an_awaitable_is_not_a_success_until_awaited() -> None:
    async def fails_after_awaiting() -> None:
        await asyncio.sleep(1)
        raise ConnectionError

    guarded = circuit_breaker(name="lazy", failure_threshold=1)(fails_after_awaiting)
    with pytest.raises(ConnectionError):
        await guarded()
    with pytest.raises(CircuitOpenError):
        await guarded()


def test_signature_and_metadata_survive() -> None:
    async def fetch(query: str, *, top_k: int = 3) -> list[str]:
        """Fetch documents."""
        return [query] * top_k

    wrapped = compose(retry(), timeout(1))(fetch)
    assert inspect.signature(wrapped) == inspect.signature(fetch)
    assert wrapped.__name__ == "fetch"
    assert wrapped.__doc__ == "Fetch documents."
    assert inspect.iscoroutinefunction(wrapped)


async def test_arguments_reach_the_function() -> None:
    async def fetch(query: str, *, top_k: int = 3) -> list[str]:
        return [query] * top_k

    assert await timeout(1)(fetch)("q", top_k=2) == ["q", "q"]


async def test_stacking_fuses_into_one_pipeline_with_the_inner_backend_name() -> None:
    seen: list[str] = []

    class Spy(resilience.Policy):
        async def execute(self, call, ctx: CallContext):
            seen.append(ctx.backend)
            return await call(ctx)

    inner = compose(Spy(), backend="rag")(ScriptedBackend([ok(1)]))
    outer = Spy()(inner)
    assert await outer() == 1
    assert seen == ["rag", "rag"]


async def test_pipelines_nest_as_policies() -> None:
    backend = ScriptedBackend([fail(ConnectionError()), ok("v")])
    inner = compose(retry(wait=wait_fixed(1)), timeout(1))
    outer = compose(safe_default(None), inner)
    assert isinstance(inner, Pipeline)
    assert await outer(backend)() == "v"


def test_public_names_are_sorted_and_complete() -> None:
    assert resilience.__all__ == sorted(resilience.__all__)
    exported = {name for name in dir(resilience) if not name.startswith("_")}
    modules = {name for name in exported if inspect.ismodule(getattr(resilience, name))}
    assert set(resilience.__all__) == exported - modules


async def test_run_takes_a_zero_argument_call_for_runners() -> None:
    backend = ScriptedBackend([fail(ConnectionError()), ok("second")])
    pipeline = compose(retry(wait=wait_fixed(1)), timeout(2)).bind("rag")
    assert await pipeline.run(backend, CallContext("rag")) == "second"
    assert backend.call_times == [0.0, 1.0]
    assert await timeout(1).run(ScriptedBackend([ok(3)]), CallContext("x")) == 3


def test_nested_pipelines_are_spliced_in_place() -> None:
    inner = compose(retry(), timeout(1))
    outer = compose(safe_default(None), inner)
    assert outer.policies == (outer.policies[0], *inner.policies)


async def test_a_context_without_a_function_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no function"):
        await compose(timeout(1)).execute(resilience.pipeline.invoke, CallContext("x"))


async def test_each_call_gets_its_own_context_and_arguments() -> None:
    seen: list[tuple[str, int]] = []

    async def echo(word: str, *, times: int) -> str:
        await asyncio.sleep(times)
        seen.append((word, times))
        return word * times

    guarded = compose(retry(), timeout(5))(echo)
    results = await asyncio.gather(guarded("a", times=2), guarded("b", times=1))
    assert results == ["aa", "b"]
    assert seen == [("b", 1), ("a", 2)]
