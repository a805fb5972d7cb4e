"""An open breaker's rejection short-cut at the door gives what the long way gives."""

from __future__ import annotations

import asyncio

import pytest
from tenacity import wait_fixed

from resilience import (
    CallContext,
    CircuitOpenError,
    DefaultFactoryError,
    Policy,
    bulkhead,
    circuit_breaker,
    compose,
    retry,
    safe_default,
    timeout,
)
from resilience.shortcut import OpenBreakerShortcut
from resilience.testing import EventCapture, ScriptedBackend, fail, now


class Neutral(Policy):
    """Passes everything through; its presence disables the shortcut."""

    async def execute(self, call, ctx: CallContext):
        return await call(ctx)


def stack(name: str, *, shortcut: bool):
    middle = () if shortcut else (Neutral(),)
    return compose(
        safe_default(list),
        *middle,
        retry(attempts=2, wait=wait_fixed(1)),
        circuit_breaker(name=name, failure_threshold=2, reset_timeout_s=10),
        timeout(1),
    )


async def trace(name: str, *, shortcut: bool):
    backend = ScriptedBackend([fail(ConnectionError())])
    guarded = stack(name, shortcut=shortcut)(backend)
    start = now()
    with EventCapture() as events:
        results = []
        for _ in range(6):
            results.append(await guarded())
            await asyncio.sleep(2)
    return (
        results,
        [e.fields() | {"name": e.name} for e in events.events],
        backend.call_count,
        now() - start,
    )


async def test_short_cut_and_long_way_agree() -> None:
    fast = await trace("same", shortcut=True)
    reset = await trace("same-long", shortcut=False)
    fast_events = [{k: v for k, v in e.items() if k != "backend"} for e in fast[1]]
    long_events = [{k: v for k, v in e.items() if k != "backend"} for e in reset[1]]
    assert fast[0] == reset[0]
    assert fast_events == long_events
    assert fast[2:] == reset[2:]
    assert "resilience.breaker_rejected" in [e["name"] for e in fast[1]]


async def test_defaults_from_the_short_cut_are_fresh() -> None:
    guarded = stack("fresh", shortcut=True)(ScriptedBackend([fail(ConnectionError())]))
    await guarded()  # two failed attempts open the breaker
    first, second = await guarded(), await guarded()
    first.append("corrupted")
    assert second == []


def bound(*policies):
    return compose(*policies).bind("b").policies


def test_found_for_the_canonical_order() -> None:
    assert OpenBreakerShortcut.find(
        bound(safe_default(None), retry(), circuit_breaker(), timeout(1))
    )
    assert OpenBreakerShortcut.find(bound(safe_default(None), circuit_breaker()))


@pytest.mark.parametrize(
    "policies",
    [
        (retry(), circuit_breaker()),  # no safe default outermost
        (safe_default(None, on=(ValueError,)), circuit_breaker()),  # would not catch it
        (safe_default(None), retry(retry_on=(CircuitOpenError,)), circuit_breaker()),
        (safe_default(None), retry(retry_on=lambda _: False), circuit_breaker()),  # unknowable
        (safe_default(None), bulkhead(2), circuit_breaker()),  # the queue comes first
        (safe_default(None), retry(), timeout(1)),  # no breaker
        (),
    ],
)
def test_not_found_when_the_long_way_could_differ(policies) -> None:
    assert OpenBreakerShortcut.find(bound(*policies)) is None


async def test_a_raising_factory_on_the_short_cut_chains_the_rejection() -> None:
    def broken() -> list[str]:
        raise RuntimeError("factory broke")

    guarded = compose(safe_default(broken), circuit_breaker(name="f", failure_threshold=1))(
        ScriptedBackend([fail(ConnectionError())])
    )
    with pytest.raises(DefaultFactoryError):  # the failure that opened it
        await guarded()
    with pytest.raises(DefaultFactoryError, match="factory broke") as caught:
        await guarded()
    assert isinstance(caught.value.__cause__, CircuitOpenError)
    assert caught.value.__cause__.retry_after_s == 30.0
