"""The tier runner: parallel backend calls with fault isolation that keep the state's shape."""

from resilience.tiers.metadata import (
    FAILED,
    FALLBACK,
    OK,
    PARALLEL,
    SEQUENTIAL,
    SKIPPED,
    TIMEOUT,
)
from resilience.tiers.progress import (
    ProgressCallback,
    TaskFailed,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
    TaskTimedOut,
)
from resilience.tiers.runner import Tier
from resilience.tiers.stream import TierStream
from resilience.tiers.task import Task

__all__ = [
    "FAILED",
    "FALLBACK",
    "OK",
    "PARALLEL",
    "SEQUENTIAL",
    "SKIPPED",
    "TIMEOUT",
    "ProgressCallback",
    "Task",
    "TaskFailed",
    "TaskSkipped",
    "TaskStarted",
    "TaskSucceeded",
    "TaskTimedOut",
    "Tier",
    "TierStream",
]
