"""Test helpers the project's own tests use: simulated time, event capture, faults.

Public API, so users test their workflows the same way (see the README, "Testing").
"""

from resilience.testing.capture import EventCapture
from resilience.testing.clock import SimulatedLoop, now, run_simulated
from resilience.testing.faults import (
    FlakyBackend,
    Outcome,
    ScriptedBackend,
    fail,
    hang,
    ok,
    outcomes,
)
from resilience.testing.reset import reset_state

__all__ = [
    "EventCapture",
    "FlakyBackend",
    "Outcome",
    "ScriptedBackend",
    "SimulatedLoop",
    "fail",
    "hang",
    "now",
    "ok",
    "outcomes",
    "reset_state",
    "run_simulated",
]
