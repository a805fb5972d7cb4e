"""Per-attempt timeouts learned from a backend's recent successful latencies."""

from __future__ import annotations

import asyncio
import bisect
import math
from collections import deque
from typing import TypeVar

from typing_extensions import override

from resilience import events
from resilience._checks import check_count, check_seconds
from resilience._shared import Registry
from resilience.errors import DeadlineExceeded
from resilience.pipeline import Call, CallContext, Policy
from resilience.timeout import run_with_limit

T = TypeVar("T")

#: Successes between recomputations of a learned limit (after the first ``min_samples``).
REFRESH_EVERY = 8


class LatencyWindow:
    """The last ``size`` successful latencies of one backend, kept sorted for quantiles.

    Memory is bounded by ``size`` whatever the number of calls; adding a sample costs a
    binary search and one list shift, reading a quantile is an index.
    """

    __slots__ = ("_order", "_sorted")

    def __init__(self, size: int) -> None:
        self._order: deque[float] = deque(maxlen=size)
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._sorted)

    def add(self, latency: float) -> None:
        """Record one sample, evicting the oldest once full."""
        if len(self._order) == self._order.maxlen:
            del self._sorted[bisect.bisect_left(self._sorted, self._order[0])]
        self._order.append(latency)
        bisect.insort(self._sorted, latency)

    def quantile(self, q: float) -> float:
        """The nearest-rank ``q`` quantile of the window (which must not be empty)."""
        rank = max(math.ceil(q * len(self._sorted)), 1)
        return self._sorted[rank - 1]


class AdaptiveDeadline(Policy):
    """A timeout of ``quantile(latencies) * multiplier`` clamped to ``[min_s, max_s]``.

    Latencies are those of successful calls; timeouts in a row widen the next attempt's
    limit (see :attr:`limit_s`), so a backend that slows down for good is not locked out.
    """

    __slots__ = (
        "_bound",
        "_reported",
        "_seen",
        "_widened",
        "_window",
        "current_s",
        "initial_s",
        "max_s",
        "min_change",
        "min_s",
        "min_samples",
        "multiplier",
        "quantile",
        "window_size",
    )

    def __init__(
        self,
        *,
        quantile: float,
        multiplier: float,
        min_s: float,
        max_s: float,
        initial_s: float,
        min_samples: int,
        window_size: int,
        min_change: float = 0.1,
    ) -> None:
        if not 0 < quantile <= 1:
            raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
        if not 1 <= multiplier < float("inf"):
            raise ValueError(f"multiplier must be a finite number >= 1, got {multiplier!r}")
        self.min_s = check_seconds("min_s", min_s)
        self.max_s = check_seconds("max_s", max_s)
        self.initial_s = check_seconds("initial_s", initial_s)
        if not self.min_s <= self.initial_s <= self.max_s:
            raise ValueError(f"need min_s <= initial_s <= max_s, got {min_s}, {initial_s}, {max_s}")
        check_count("min_samples", min_samples)
        check_count("window_size", window_size)
        if min_samples > window_size:
            raise ValueError(
                f"min_samples ({min_samples}) cannot exceed window_size ({window_size})"
            )
        self.quantile = quantile
        self.multiplier = multiplier
        self.min_samples = min_samples
        self.window_size = window_size
        self.min_change = min_change
        self._window = LatencyWindow(window_size)
        #: The per-attempt limit in force now, in seconds (read it for metrics).
        self.current_s = self.initial_s
        self._reported = self.initial_s
        self._seen = 0
        self._widened: float | None = None
        self._bound = False  # True for the per-backend instances that learn

    @property
    def settings(self) -> tuple[float, ...]:
        """The options that make two learned deadlines the same."""
        return (self.quantile, self.multiplier, self.min_s, self.max_s, self.initial_s,
                self.min_samples, self.window_size)  # fmt: skip

    @override
    def bind(self, backend: str) -> AdaptiveDeadline:
        """One learned deadline per backend (and options), shared within the process."""
        return _learned.get((backend, *self.settings), self._unlearned)

    def _unlearned(self) -> AdaptiveDeadline:
        learned = AdaptiveDeadline(
            quantile=self.quantile, multiplier=self.multiplier, min_s=self.min_s,
            max_s=self.max_s, initial_s=self.initial_s, min_samples=self.min_samples,
            window_size=self.window_size, min_change=self.min_change,
        )  # fmt: skip
        learned._bound = True
        return learned

    def reset(self) -> None:
        """Forget the samples: back to ``initial_s``."""
        self._window = LatencyWindow(self.window_size)
        self.current_s = self._reported = self.initial_s
        self._seen = 0
        self._widened = None

    @property
    def samples(self) -> int:
        """How many latencies the current value is learned from."""
        return len(self._window)

    def observe(self, latency_s: float, backend: str) -> None:
        """Learn from one successful call's latency.

        The limit is recomputed once ``min_samples`` are in, then every
        ``REFRESH_EVERY`` successes: a quantile of a 1000-sample window barely moves per
        sample, and this runs on every successful call.
        """
        window = self._window
        window.add(latency_s)
        self._seen += 1
        if self._seen < self.min_samples or (self._seen - self.min_samples) % REFRESH_EVERY:
            return
        value = min(max(window.quantile(self.quantile) * self.multiplier, self.min_s), self.max_s)
        self.current_s = value
        if abs(value - self._reported) > self.min_change * self._reported:
            events.emit(events.AdaptiveDeadlineMoved(backend, self._reported, value, len(window)))
            self._reported = value

    @override
    async def execute(self, call: Call[T], ctx: CallContext) -> T:
        if not self._bound:  # options only: learn on the backend's own instance
            return await self.bound(ctx.backend).execute(call, ctx)
        loop = asyncio.get_running_loop()
        started = loop.time()
        limit = self.limit_s
        try:
            result = await run_with_limit(call, ctx, limit, started)
        except DeadlineExceeded as exc:
            if not exc.budget and limit >= self.limit_s:  # concurrent timeouts widen once
                self._widened = min(limit * self.multiplier, self.max_s)
            raise
        self._widened = None
        self.observe(loop.time() - started, ctx.backend)
        return result

    @property
    def limit_s(self) -> float:
        """The limit the next attempt gets: ``current_s``, widened after timeouts in a row.

        Only successes are learned, so a backend that slows down for good would otherwise
        time out at the old limit forever. An attempt cut short at the limit in force
        widens the next attempts' limit by ``multiplier`` (up to ``max_s``) until one
        succeeds and is learned; the odd slow call of a heavy tail, rarely followed by
        another, is still cut at ``current_s``.
        """
        widened = self._widened
        return self.current_s if widened is None else max(widened, self.current_s)


_learned: Registry[AdaptiveDeadline] = Registry("learned deadline")


def reset_adaptive_deadlines() -> None:
    """Unlearn every learned deadline in place and forget them (between tests)."""
    _learned.reset()


def adaptive_deadline(
    *,
    quantile: float = 0.99,
    multiplier: float = 1.5,
    min_s: float = 0.05,
    max_s: float = 30.0,
    initial_s: float = 5.0,
    min_samples: int = 20,
    window_size: int = 1000,
) -> AdaptiveDeadline:
    """Time each attempt out at a high quantile of recent successful latencies.

    Until ``min_samples`` successes are seen the limit is ``initial_s``; after that it is
    ``quantile(last window_size latencies) * multiplier`` clamped to ``[min_s, max_s]``.
    The learned value is kept per backend (shared within the process): read it as
    ``policy.bind(backend).current_s``; the object this returns holds only the options.
    """
    return AdaptiveDeadline(
        quantile=quantile, multiplier=multiplier, min_s=min_s, max_s=max_s,
        initial_s=initial_s, min_samples=min_samples, window_size=window_size,
    )  # fmt: skip
