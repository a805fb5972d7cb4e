"""A tier's deadlines share one event-loop timer; every run still ends exactly at its own."""

from __future__ import annotations

import asyncio

from resilience import compose
from resilience._expiry import Expiries
from resilience.settings import get_settings
from resilience.testing import ScriptedBackend, hang, now, ok
from resilience.tiers import Task, Tier

NO_POLICY = compose()


def hanging_tier(timeout_s: float, name: str = "t") -> Tier:
    return Tier(name, [Task("a", ScriptedBackend([hang()]), policy=NO_POLICY)], timeout_s=timeout_s)


async def _run_at(tier: Tier, start: float) -> float:
    await asyncio.sleep(start)
    await tier.run({})
    return now()


async def test_overlapping_runs_each_end_at_their_own_deadline() -> None:
    tier = hanging_tier(2.0)
    async with asyncio.timeout(30):  # a missed deadline fails the test instead of hanging
        ends = await asyncio.gather(*(_run_at(tier, start) for start in (0.0, 0.5, 1.0)))
    assert ends == [2.0, 2.5, 3.0]


async def test_a_finished_runs_old_timer_does_not_cut_the_next_run_short() -> None:
    backend = ScriptedBackend([ok(1, after_s=0.5), hang()])
    tier = Tier("t", [Task("a", backend, policy=NO_POLICY)], timeout_s=5.0)
    # One queue and timer, first armed for the first (fast) run's deadline at 5.0.
    async with asyncio.timeout(30):
        first, second = await asyncio.gather(_run_at(tier, 0.0), _run_at(tier, 1.0))
    assert (first, second) == (0.5, 6.0)


async def test_tiers_with_other_timeouts_keep_their_own_deadlines() -> None:
    async with asyncio.timeout(30):
        ends = await asyncio.gather(
            _run_at(hanging_tier(3.0, "long"), 0.0), _run_at(hanging_tier(1.0, "short"), 0.5)
        )
    assert ends == [3.0, 1.5]


async def test_a_new_timeout_setting_takes_effect_on_the_next_run(monkeypatch) -> None:
    tier = Tier("t", [Task("a", ScriptedBackend([hang()]), policy=NO_POLICY)])
    await tier.run({})
    monkeypatch.setenv("RESILIENCE_TIERS__T__TIMEOUT_S", "1")
    get_settings.cache_clear()
    started = now()
    await tier.run({})
    assert (started, now()) == (5.0, 6.0)


async def test_deadlines_of_finished_runs_do_not_pile_up() -> None:
    backend = ScriptedBackend([ok(1, after_s=0.01)])
    tier = Tier("t", [Task("a", backend, policy=NO_POLICY)], timeout_s=5.0)
    for _ in range(100):
        await tier.run({})
    expiries = tier._expiry
    assert expiries is not None
    assert len(expiries._entries) == 1  # the last run's, cleared, dropped by the next start
    assert expiries._entries[0].target is None


async def test_a_cleared_deadline_never_cancels_its_target() -> None:
    loop = asyncio.get_running_loop()
    expiries = Expiries(loop, 1.0)
    kept, cut = loop.create_future(), loop.create_future()
    expiries.start(now(), kept).clear()
    expiries.start(now(), cut)
    await asyncio.sleep(1.0)
    assert (kept.cancelled(), cut.cancelled()) == (False, True)
