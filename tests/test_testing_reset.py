"""reset_state(): each test starts from closed breakers, even for functions decorated once."""

from __future__ import annotations

import pytest

from resilience import CircuitOpenError, adaptive_deadline, bulkhead, circuit_breaker, compose
from resilience.adaptive import reset_adaptive_deadlines
from resilience.testing import ScriptedBackend, fail, ok, reset_state

backend = ScriptedBackend([fail(ConnectionError())] * 2, then=ok("fine"))


@circuit_breaker(name="module-level", failure_threshold=2)
async def decorated_once_at_import() -> str:
    return await backend()


async def test_a_function_decorated_at_import_is_closed_again_after_a_reset() -> None:
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await decorated_once_at_import()
    with pytest.raises(CircuitOpenError):
        await decorated_once_at_import()
    reset_state()
    assert await decorated_once_at_import() == "fine"


async def test_learned_deadlines_and_bulkheads_are_emptied_in_place() -> None:
    learned = adaptive_deadline(min_samples=1, initial_s=2).bind("learned")
    learned.observe(0.01, "learned")
    limited = compose(bulkhead(1, name="limited")).bind("limited")
    guarded = limited(ScriptedBackend([ok(1)]))
    assert await guarded() == 1
    reset_adaptive_deadlines()
    reset_state()
    assert learned.current_s == 2
    assert learned.samples == 0
    assert await guarded() == 1
