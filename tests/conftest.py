"""Every async test runs on simulated time, from closed breakers, and leaves no task behind."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from typing import TYPE_CHECKING

import pytest

from resilience.testing import SimulatedLoop, reset_state

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping

#: No test may wait this long in real time (simulated time is free).
MAX_REAL_WAIT_S = 0.05
#: The whole suite's real-time budget.
MAX_SUITE_S = 60.0
_real_sleep = time.sleep


def pytest_sessionstart(session) -> None:
    session.config.stash[_started] = time.perf_counter()


def pytest_sessionfinish(session, exitstatus) -> None:
    elapsed = time.perf_counter() - session.config.stash[_started]
    if session.testscollected > 100 and elapsed > MAX_SUITE_S and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(
            f"the suite took {elapsed:.1f} s in real time; the budget is {MAX_SUITE_S} s"
        )


_started = pytest.StashKey[float]()


@pytest.fixture(autouse=True)
def _no_long_real_sleep(monkeypatch) -> None:
    def guarded_sleep(seconds: float) -> None:
        assert seconds <= MAX_REAL_WAIT_S, f"time.sleep({seconds}) in a test: use simulated time"
        _real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", guarded_sleep)


def pytest_asyncio_loop_factories(config, item) -> Mapping[str, type[SimulatedLoop]]:
    return {"simulated": SimulatedLoop}


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("RESILIENCE_"):
            monkeypatch.delenv(key)
    reset_state()
    yield
    reset_state()


@pytest.fixture(autouse=True)
async def _no_task_left_and_no_real_sleep(request) -> AsyncIterator[None]:
    yield
    if not inspect.iscoroutinefunction(request.function):
        return
    current = asyncio.current_task()
    leftover = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    for task in leftover:
        task.cancel()
    assert leftover == [], f"tasks left running: {leftover}"
    loop = asyncio.get_running_loop()
    assert isinstance(loop, SimulatedLoop)
    assert loop.longest_real_wait_s < MAX_REAL_WAIT_S, (
        f"the test waited {loop.longest_real_wait_s:.3f} s in real time"
    )
