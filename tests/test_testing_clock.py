"""SimulatedLoop: one clock for every policy, real waits only for real work."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from resilience.testing import SimulatedLoop, now, run_simulated


async def test_sleeping_minutes_costs_no_real_time() -> None:
    started = time.perf_counter()
    await asyncio.sleep(600)
    assert now() == 600.0
    assert time.perf_counter() - started < 0.05


async def test_timers_fire_in_order_at_their_exact_times() -> None:
    fired: list[tuple[str, float]] = []

    async def at(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        fired.append((name, now()))

    await asyncio.gather(at("c", 3.0), at("a", 1.0), at("b", 2.0))
    assert fired == [("a", 1.0), ("b", 2.0), ("c", 3.0)]


async def test_worker_threads_run_in_real_time_before_time_jumps() -> None:
    def blocking() -> str:
        time.sleep(0.01)
        return "done"

    result = await asyncio.wait_for(asyncio.to_thread(blocking), timeout=5)
    assert result == "done"
    assert now() < 1.0  # the 5 s timeout did not jump ahead of the thread


def test_run_simulated_returns_the_result_and_starts_at_the_given_time() -> None:
    async def main() -> float:
        await asyncio.sleep(10)
        return now()

    assert run_simulated(main(), start=100.0) == 110.0


def test_wall_clock_moves_with_simulated_time() -> None:
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    async def main() -> datetime:
        await asyncio.sleep(90)
        return datetime.now(UTC)

    with asyncio.Runner(loop_factory=lambda: SimulatedLoop(wall_clock=start)) as runner:
        assert runner.run(main()) == start + timedelta(seconds=90)
    assert datetime.now(UTC).year >= 2026  # freezegun stopped with the loop
    assert abs(time.time() - datetime.now(UTC).timestamp()) < 1


async def test_sockets_in_the_same_loop_answer_before_time_jumps() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping\n")
        line = await asyncio.wait_for(reader.readline(), timeout=5)
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    assert line == b"ping\n"
    assert now() < 0.1


def test_loop_rejects_nothing_when_idle() -> None:
    loop = SimulatedLoop()
    try:
        assert loop.time() == 0.0
        loop.advance(-1)  # time never goes back
        assert loop.time() == 0.0
    finally:
        loop.close()


@pytest.mark.parametrize("start", [0.0, 1e6])
def test_start_time_is_configurable(start: float) -> None:
    loop = SimulatedLoop(start=start)
    try:
        assert loop.time() == start
    finally:
        loop.close()
