"""A tier run as an async iterator of progress events, for services that stream progress."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Coroutine
    from types import TracebackType

    from resilience.events import Event
    from resilience.tiers.progress import ProgressCallback


class TierStream:
    """Events of one run as they happen, ending with ``resilience.tier_finished``.

    The run starts at the first iteration and writes the state as ``Tier.run`` does. When
    the consumer stops early, the rest of the run is cancelled and awaited: at once when
    the stream is closed (``async with tier.stream(state) as events:`` or ``aclose()``),
    and otherwise when the event loop finalizes the abandoned iterator. An error of the
    tier itself (its configuration) is raised from the iteration.
    """

    __slots__ = ("_events",)

    def __init__(self, run_with: Callable[[ProgressCallback], Coroutine[Any, Any, object]]) -> None:
        self._events = _events(run_with)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        return await anext(self._events)

    async def aclose(self) -> None:
        """Stop: cancel what is still running and wait until it has unwound."""
        await self._events.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _events(
    run_with: Callable[[ProgressCallback], Coroutine[Any, Any, object]],
) -> AsyncGenerator[Event, None]:
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    runner = asyncio.create_task(run_with(queue.put_nowait))
    runner.add_done_callback(lambda _: queue.put_nowait(None))
    try:
        while (event := await queue.get()) is not None:
            yield event
        runner.result()
    finally:
        if not runner.done():
            runner.cancel()
            await asyncio.wait((runner,))
        if runner.done() and not runner.cancelled():
            runner.exception()  # retrieved: the consumer chose to stop listening
