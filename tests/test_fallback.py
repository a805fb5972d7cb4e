"""safe_default(): fresh defaults on failure; never cancellation or interpreter exits."""

from __future__ import annotations

import asyncio
import threading

import pytest

from resilience import DefaultFactoryError, safe_default
from resilience.events import FellBack
from resilience.testing import EventCapture, ScriptedBackend, fail, hang, ok

#: The backend name a ScriptedBackend gets when nothing names it.
SCRIPTED = "resilience.testing.faults.ScriptedBackend"


async def test_success_passes_the_result_through() -> None:
    backend = ScriptedBackend([ok(["doc"])])
    assert await safe_default(list)(backend)() == ["doc"]


async def test_failure_returns_the_default_value_and_reports_it() -> None:
    backend = ScriptedBackend([fail(ConnectionError())])
    with EventCapture() as events:
        assert await safe_default("n/a")(backend)() == "n/a"
    assert events.of(FellBack) == [FellBack(SCRIPTED, "ConnectionError", programming_error=False)]


async def test_factory_defaults_are_fresh_objects_each_failure() -> None:
    backend = ScriptedBackend([fail(ConnectionError())])
    guarded = safe_default(list)(backend)
    first, second = await guarded(), await guarded()
    first.append("corrupted")
    assert second == []
    assert first is not second


async def test_mutable_value_defaults_are_copied_each_failure() -> None:
    backend = ScriptedBackend([fail(ConnectionError())])
    guarded = safe_default({"docs": []})(backend)
    first, second = await guarded(), await guarded()
    first["docs"].append("corrupted")
    assert second == {"docs": []}


async def test_limited_to_chosen_exception_types() -> None:
    backend = ScriptedBackend([fail(ValueError("bad answer"))])
    with pytest.raises(ValueError, match="bad answer"):
        await safe_default(None, on=(ConnectionError,))(backend)()


async def test_programming_errors_fall_back_but_are_reported_as_bugs() -> None:
    backend = ScriptedBackend([fail(AttributeError("'dict' object has no attribute 'query'"))])
    with EventCapture() as events:
        assert await safe_default(None)(backend)() is None
    assert events.of(FellBack)[0].programming_error is True


async def test_cancellation_is_never_replaced_by_the_default() -> None:
    backend = ScriptedBackend([hang()])
    task = asyncio.create_task(safe_default("default")(backend)())
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("exit_error", [KeyboardInterrupt(), SystemExit(1)])
async def test_interpreter_exits_propagate(exit_error: BaseException) -> None:
    async def exits() -> None:
        raise exit_error

    with pytest.raises(type(exit_error)):
        await safe_default(None)(exits)()


def test_options_that_cannot_work_fail_when_built() -> None:
    with pytest.raises(TypeError, match="tuple of exception types"):
        safe_default(None, on=ValueError)  # type: ignore[arg-type]
    lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot be copied"):
        safe_default({"lock": lock})


@pytest.mark.parametrize("kind", [BaseException, asyncio.CancelledError, KeyboardInterrupt])
def test_catching_base_exceptions_is_refused(kind: type[BaseException]) -> None:
    with pytest.raises(TypeError, match="cancellation"):
        safe_default(None, on=(kind,))  # type: ignore[arg-type]


async def test_a_raising_factory_says_so_and_chains_the_original() -> None:
    original = ConnectionError("backend down")
    backend = ScriptedBackend([fail(original)])

    def broken_factory() -> list[str]:
        raise RuntimeError("factory broke")

    with pytest.raises(DefaultFactoryError, match="factory broke") as caught:
        await safe_default(broken_factory)(backend)()
    assert caught.value.__cause__ is original
    assert isinstance(caught.value.factory_error, RuntimeError)
    assert "ConnectionError" in str(caught.value)
