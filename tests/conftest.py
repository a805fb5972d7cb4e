"""Every async test runs on simulated time, from closed breakers, and leaves no task behind."""

from __future__ import annotations

import asyncio
import inspect
import os
from typing import TYPE_CHECKING

import pytest

from resilience.testing import SimulatedLoop, reset_state

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping

#: No test may wait this long in real time (simulated time is free).
MAX_REAL_WAIT_S = 0.05


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
