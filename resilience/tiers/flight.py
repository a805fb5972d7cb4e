"""The steps of one tier run: sort the tasks, run each in isolation, sum the run up.

``Tier.run`` strings these together and awaits the gather of the tasks itself, so no
helper coroutine stands between the caller and the gather on every run; plain functions
with explicit arguments keep the hot path free of per-run objects. The state is only
read here, never written.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from resilience import events
from resilience.bulkhead import priority_var
from resilience.errors import is_programming_error
from resilience.pipeline import CallContext
from resilience.tiers import progress
from resilience.tiers.metadata import (
    FAILED,
    FALLBACK,
    OK,
    PENDING,
    RUNNING,
    SKIPPED,
    TIMEOUT,
    Status,
    TaskRun,
    tier_metadata,
)

if TYPE_CHECKING:
    from resilience.settings import ResilienceSettings
    from resilience.tiers.progress import ProgressCallback
    from resilience.tiers.task import Task


def sort_tasks(
    tier: str,
    tasks: tuple[Task, ...],
    state: Any,  # noqa: ANN401 - the caller's state
    settings: ResilienceSettings | None,
    on_event: ProgressCallback | None,
) -> tuple[list[TaskRun], list[TaskRun]]:
    """Every task's run, and those of the enabled ones (their policy resolved)."""
    runs = [TaskRun(task, state) for task in tasks]
    active = []
    for run in runs:
        task = run.task
        if task.enabled is None or _enabled(tier, run, state, on_event):
            run.policy = task.resolve_policy(settings)
            active.append(run)
    return runs, active


def _enabled(tier: str, run: TaskRun, state: Any, on_event: ProgressCallback | None) -> bool:  # noqa: ANN401
    task = run.task
    try:
        enabled = task.is_enabled(state)
    except Exception as exc:  # noqa: BLE001 - the task's own condition failed: its key alone
        fail(tier, run, exc, status=FAILED, duration_s=0.0, on_event=on_event)
        return False
    if not enabled:
        run.status = SKIPPED
        if on_event is not None:
            progress.deliver(on_event, progress.TaskSkipped(task.backend, tier, task.key))
    return enabled


async def run_one(
    tier: str,
    run: TaskRun,
    on_event: ProgressCallback | None,
    loop: asyncio.AbstractEventLoop,
    baseline: int,
) -> None:
    """Run one task; its outcome lands in ``run``.

    Only a cancellation requested of the running task (more than ``baseline`` requests
    so far) propagates; a ``CancelledError`` the backend raised by itself is its failure.
    """
    task = run.task
    run.status = RUNNING
    run.started = started = loop.time()
    if on_event is not None:
        progress.deliver(on_event, progress.TaskStarted(task.backend, tier, task.key))
    token = None if task.priority is None else priority_var.set(task.priority)
    policy = run.policy
    try:
        if policy is None:
            run.reached = True
            run.value = await (task.call(run.state) if task.direct else task.invoke(run.state))
        else:
            run.ctx = ctx = CallContext(task.backend)
            run.value = await policy.run(run.call, ctx)
    except asyncio.CancelledError as exc:
        current = asyncio.current_task()
        if current is None or current.cancelling() > baseline:
            raise  # the tier's timeout or the caller: never swallowed
        failure: BaseException = exc  # the backend cancelled itself: its failure alone
    except Exception as exc:  # noqa: BLE001 - isolated: the task's key gets its default
        failure = exc
    else:
        run.status = OK
        run.duration_s = duration = loop.time() - started
        if on_event is not None:
            event = progress.TaskSucceeded(task.backend, tier, task.key, duration, run.attempts)
            progress.deliver(on_event, event)
        return
    finally:
        if token is not None:
            priority_var.reset(token)
    status: Status = FAILED if run.reached else FALLBACK
    fail(tier, run, failure, status=status, duration_s=loop.time() - started, on_event=on_event)


async def run_in_turn(
    tier: str,
    runs: list[TaskRun],
    on_event: ProgressCallback | None,
    loop: asyncio.AbstractEventLoop,
    timeout_s: float,
) -> None:
    """Run the tasks one after the other within ``timeout_s`` in all."""
    current = asyncio.current_task()
    baseline = current.cancelling() if current is not None else 0
    scope = asyncio.timeout(timeout_s)
    try:
        async with scope:
            for run in runs:
                if scope.expired():  # the last task swallowed its cancellation
                    break
                await run_one(tier, run, on_event, loop, baseline)
    except TimeoutError:
        if not scope.expired():
            raise


async def cancel_and_wait(children: list[asyncio.Task[None]]) -> None:
    """Cancel the children still running and wait until they have unwound."""
    unfinished = [child for child in children if not child.done()]
    if unfinished:
        for child in unfinished:
            child.cancel()
        await asyncio.wait(unfinished)


def land(
    tier: str,
    runs: list[TaskRun],
    *,
    mode: str,
    started: float,
    finished: float,
    timeout_s: float,
    on_event: ProgressCallback | None,
) -> tuple[dict[str, Any], dict[str, Any], events.TierFinished]:
    """Time out what did not finish; the key values, metadata entry and finish event."""
    values = {}
    for run in runs:
        task = run.task
        status = run.status
        if status == OK:
            values[task.key] = run.value
            continue
        if status in (RUNNING, PENDING):
            _time_out(tier, run, finished, timeout_s, on_event)
        values[task.key] = task.make_default(run.error)
    duration = finished - started
    metadata = tier_metadata(runs, mode, duration, timeout_s)
    finish = events.TierFinished(
        tier, mode, duration, metadata["succeeded"], metadata["failed"], metadata["skipped"]
    )
    return values, metadata, finish


def announce(event: events.Event, on_event: ProgressCallback | None) -> None:
    """Report a tier event to the observer hub and to the run's callback."""
    events.emit(event)
    if on_event is not None:
        progress.deliver(on_event, event)


def fail(
    tier: str,
    run: TaskRun,
    failure: BaseException,
    *,
    status: Status,
    duration_s: float,
    on_event: ProgressCallback | None,
) -> None:
    """The task's key gets its default: record why and report it."""
    task = run.task
    run.status = status
    run.error = failure
    run.duration_s = duration_s
    error_type = type(failure).__name__
    events.emit(events.FellBack(task.backend, error_type, is_programming_error(failure)))
    if on_event is not None:
        event = progress.TaskFailed(
            task.backend, tier, task.key, status, duration_s, run.attempts, error_type
        )
        progress.deliver(on_event, event)


def _time_out(
    tier: str, run: TaskRun, now: float, timeout_s: float, on_event: ProgressCallback | None
) -> None:
    task = run.task
    run.duration_s = now - run.started if run.status == RUNNING else 0.0
    run.status = TIMEOUT
    run.error = TimeoutError(f"tier {tier!r} timed out after {timeout_s:.6g} s")
    events.emit(events.FellBack(task.backend, "TimeoutError", programming_error=False))
    if on_event is not None:
        progress.deliver(
            on_event, progress.TaskTimedOut(task.backend, tier, task.key, run.duration_s)
        )
