"""What each task did in one tier run, and the monitoring entry made from it.

Statuses (each task's key holds its result only for ``ok``, its fresh default otherwise):

``ok``
    The call returned.
``failed``
    The call reached the backend and still ended in an error (after the policies'
    retries; a per-attempt timeout counts here).
``fallback``
    A policy turned the call away before it reached the backend: an open breaker, a
    full bulkhead queue, a spent deadline budget. The backend did not fail; the default
    stands in for a call that was never made.
``timeout``
    The tier's own timeout ended the run before the task finished (or started).
``skipped``
    The task's enable condition was off.

In the counts, ``failed`` is every task whose default stands in for a call that did not
deliver (failed, fallback and timeout alike).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

if TYPE_CHECKING:
    from resilience.pipeline import CallContext, Policy
    from resilience.tiers.task import Task

Status: TypeAlias = Literal["pending", "running", "ok", "failed", "fallback", "timeout", "skipped"]

PENDING: Final = "pending"
RUNNING: Final = "running"
OK: Final = "ok"
FAILED: Final = "failed"
FALLBACK: Final = "fallback"
TIMEOUT: Final = "timeout"
SKIPPED: Final = "skipped"

PARALLEL: Final = "parallel"
SEQUENTIAL: Final = "sequential"


class TaskRun:
    """One task's part in one run; written to the state only once the tier has finished."""

    __slots__ = (
        "ctx",
        "duration_s",
        "error",
        "policy",
        "reached",
        "started",
        "state",
        "status",
        "task",
        "value",
    )

    def __init__(self, task: Task, state: Any) -> None:  # noqa: ANN401 - the caller's state
        self.task = task
        self.state = state
        self.status: Status = PENDING
        self.policy: Policy | None = None
        self.value: Any = None
        self.error: BaseException | None = None
        self.started = 0.0
        self.duration_s = 0.0
        self.ctx: CallContext | None = None
        self.reached = False

    @property
    def attempts(self) -> int:
        """Attempts made: the policies' count, 1 for a direct call, 0 if it never started."""
        ctx = self.ctx
        return ctx.attempt if ctx is not None else int(self.reached)

    def call(self) -> Any:  # noqa: ANN401 - the task's awaitable
        """The thunk the policies run; notes that the backend was actually reached."""
        self.reached = True
        return self.task.invoke(self.state)


def tier_metadata(
    runs: list[TaskRun], mode: str, duration_s: float, timeout_s: float
) -> dict[str, Any]:
    """The tier's entry under ``state["metadata"]``.

    ``speedup`` is the sum of the task durations over the wall duration: about the number
    of tasks for a parallel tier of equal tasks, about 1 for a sequential one, and 1 when
    no time passed or nothing ran.
    """
    tasks = {}
    succeeded = skipped = timed_out = 0
    task_time = 0.0
    for run in runs:
        task = run.task
        status = run.status
        error = run.error
        ctx = run.ctx
        duration = run.duration_s
        tasks[task.key] = {
            "status": status,
            "backend": task.backend,
            "duration_s": duration,
            "attempts": ctx.attempt if ctx is not None else int(run.reached),
            "error": None if error is None else type(error).__name__,
        }
        task_time += duration
        if status == OK:
            succeeded += 1
        elif status == SKIPPED:
            skipped += 1
        elif status == TIMEOUT:
            timed_out += 1
    return {
        "mode": mode,
        "duration_s": duration_s,
        "timeout_s": timeout_s,
        "timed_out": timed_out > 0,
        "tasks": tasks,
        "succeeded": succeeded,
        "failed": len(runs) - succeeded - skipped,
        "skipped": skipped,
        "task_duration_sum_s": task_time,
        "speedup": task_time / duration_s if duration_s > 0 and task_time > 0 else 1.0,
    }
