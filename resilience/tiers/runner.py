"""The tier: backend calls that run together and keep the workflow's state shape.

The state is read with dict access only and written once, after every task has finished
or been cancelled and awaited: a cancelled run writes no key at all, a finished one
writes every declared key (result or fresh default) and its metadata entry, and nothing
else. A task's failure never escapes; only a mistake in the tier's own configuration
(or a default factory that raises) does, and the caller's cancellation always does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from resilience import events
from resilience._checks import check_seconds
from resilience._expiry import Expiries
from resilience.settings import ResilienceSettings, TierSettings, get_settings
from resilience.tiers import flight
from resilience.tiers.metadata import PARALLEL, SEQUENTIAL
from resilience.tiers.stream import TierStream
from resilience.tiers.task import METADATA, Task

if TYPE_CHECKING:
    from resilience.tiers.progress import ProgressCallback

S = TypeVar("S", bound=Mapping[str, Any])


class Tier:
    """Backend calls that run together and keep the workflow's state shape.

    ``parallel``, ``timeout_s`` (default 5 s) and ``metadata_key`` (default: the name)
    are the code's choice; the environment overrides any of them per tier
    (``RESILIENCE_TIERS__<NAME>__PARALLEL=false``), so operators can switch a tier to
    sequential without a deploy. ``settings`` replaces the process's settings (tests).
    """

    __slots__ = ("_cache", "_code", "_expiry", "_keys", "_settings", "name", "tasks")

    def __init__(
        self,
        name: str,
        tasks: Iterable[Task],
        *,
        parallel: bool | None = None,
        timeout_s: float | None = None,
        metadata_key: str | None = None,
        settings: ResilienceSettings | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a tier's name must be a non-empty str, got {name!r}")
        if settings is not None and not isinstance(settings, ResilienceSettings):
            raise TypeError(f"tier {name!r}: settings must be ResilienceSettings, got {settings!r}")
        self.tasks = _checked_tasks(name, tasks)
        code = _code_options(name, parallel, timeout_s, metadata_key)
        self.name = name
        self._keys = tuple(task.key for task in self.tasks)
        self._code = code
        self._settings = settings
        self._cache: tuple[ResilienceSettings, TierSettings] | None = None
        self._expiry: Expiries | None = None

    def __repr__(self) -> str:
        return f"Tier({self.name!r}, tasks={list(self._keys)!r})"

    def options(self) -> TierSettings:
        """The options in force: fields set in the environment over the code's over defaults."""
        settings = self._settings if self._settings is not None else get_settings()
        cache = self._cache
        if cache is not None and cache[0] is settings:
            return cache[1]
        configured = settings.for_tier(self.name)
        update = {field: getattr(configured, field) for field in configured.model_fields_set}
        options = self._code.model_copy(update=update)
        self._cache = (settings, options)
        return options

    async def run(self, state: S, *, on_event: ProgressCallback | None = None) -> S:
        """Run the tier and return ``state`` itself, its task keys and metadata entry set."""
        target = _mutable(state, "run")
        options = self.options()
        name = self.name
        mode = PARALLEL if options.parallel else SEQUENTIAL
        flight.announce(events.TierStarted(name, mode, self._keys), on_event)
        loop = asyncio.get_running_loop()
        started = loop.time()
        runs, active = flight.sort_tasks(name, self.tasks, state, self._settings, on_event)
        if active and options.parallel:
            # The gather is awaited right here, not in a helper coroutine: one frame less.
            current = asyncio.current_task()
            baseline = current.cancelling() if current is not None else 0
            children = [
                loop.create_task(flight.run_one(name, run, on_event, loop, 0)) for run in active
            ]
            joined = asyncio.gather(*children)
            # At the deadline the gather is cancelled, which cancels the children and waits
            # for them; the caller's cancellation is told apart by the count of cancellation
            # requests on this task, as ``asyncio.timeout`` does.
            deadline = self._expiries(loop, options.timeout_s).start(started, joined)
            try:
                await joined
            except asyncio.CancelledError:
                if current is None or current.cancelling() > baseline:
                    raise  # the caller's cancellation (gather has awaited the children)
                # the tier's timeout: gather has cancelled and awaited the children
            except BaseException:
                # Not an ``Exception`` (those stay inside their task): gather let it
                # through at once and left the siblings running.
                await flight.cancel_and_wait(children)
                raise
            finally:
                deadline.clear()
        elif active:
            await flight.run_in_turn(name, active, on_event, loop, options.timeout_s)
        values, entry, finished = flight.land(
            name,
            runs,
            mode=mode,
            started=started,
            finished=loop.time(),
            timeout_s=options.timeout_s,
            on_event=on_event,
        )
        for key, value in values.items():
            target[key] = value
        metadata = target.get(METADATA)
        if metadata is None:
            metadata = target[METADATA] = {}
        elif type(metadata) is not dict and not isinstance(metadata, MutableMapping):
            raise TypeError(f"state[{METADATA!r}] must be a dict, got {type(metadata).__name__}")
        metadata[options.metadata_key or name] = entry
        flight.announce(finished, on_event)
        return state

    async def updates(
        self, state: Mapping[str, Any], *, on_event: ProgressCallback | None = None
    ) -> dict[str, Any]:
        """Run the tier and return only its update (task keys and ``metadata``), for LangGraph.

        ``state`` is not changed: the tasks receive a shallow copy of it (as a LangGraph
        node receives its state). The ``metadata`` value is a copy of the state's with
        the tier's entry added, so a framework that replaces the key keeps the others.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"a tier's state must be a mapping, got {type(state).__name__}")
        _check_metadata(state)
        scratch = dict(state)
        metadata = scratch.get(METADATA)
        scratch[METADATA] = {} if metadata is None else dict(metadata)
        await self.run(scratch, on_event=on_event)
        return {key: scratch[key] for key in (*self._keys, METADATA)}

    def stream(self, state: S) -> TierStream:
        """Run the tier as :meth:`run` does, yielding its progress events as they happen."""
        _mutable(state, "stream")
        return TierStream(lambda on_event: self.run(state, on_event=on_event))

    def _expiries(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> Expiries:
        # One queue per tier, for the loop and timeout in use; a new loop or timeout
        # starts a new one, while runs already queued stay with the old one until done.
        expiries = self._expiry
        if expiries is None or expiries.loop is not loop or expiries.timeout_s != timeout_s:
            expiries = self._expiry = Expiries(loop, timeout_s)
        return expiries


def _checked_tasks(name: str, tasks: Iterable[Task]) -> tuple[Task, ...]:
    if isinstance(tasks, str | bytes | Mapping) or not isinstance(tasks, Iterable):
        raise TypeError(f"tier {name!r}: tasks must be an iterable of Task, got {tasks!r}")
    checked = tuple(tasks)
    if not checked:
        raise ValueError(f"tier {name!r} has no tasks")
    keys: set[str] = set()
    for task in checked:
        if not isinstance(task, Task):
            raise TypeError(f"tier {name!r}: expected Task objects, got {task!r}")
        if task.key in keys:
            raise ValueError(f"tier {name!r}: two tasks write the key {task.key!r}")
        keys.add(task.key)
    return checked


def _code_options(
    name: str, parallel: bool | None, timeout_s: float | None, metadata_key: str | None
) -> TierSettings:
    code: dict[str, Any] = {}
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise TypeError(f"tier {name!r}: parallel must be a bool, got {parallel!r}")
        code["parallel"] = parallel
    if timeout_s is not None:
        code["timeout_s"] = check_seconds("timeout_s", timeout_s)
    if metadata_key is not None:
        if not isinstance(metadata_key, str) or not metadata_key:
            raise TypeError(f"tier {name!r}: metadata_key must be a non-empty str")
        code["metadata_key"] = metadata_key
    return TierSettings(**code)


def _mutable(state: object, method: str) -> MutableMapping[str, Any]:
    if type(state) is not dict and not isinstance(state, MutableMapping):
        raise TypeError(
            f"Tier.{method} needs the state as a dict (or TypedDict), got {type(state).__name__}; "
            "use Tier.updates for read-only mappings"
        )
    _check_metadata(state)
    return cast("MutableMapping[str, Any]", state)


def _check_metadata(state: Mapping[str, Any]) -> None:
    metadata = state.get(METADATA)
    if (
        metadata is not None
        and type(metadata) is not dict
        and not isinstance(metadata, MutableMapping)
    ):
        raise TypeError(f"state[{METADATA!r}] must be a dict, got {type(metadata).__name__}")
