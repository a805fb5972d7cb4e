"""Forgetting process-wide state between tests."""

from resilience.adaptive import reset_adaptive_deadlines
from resilience.breaker import reset_breakers
from resilience.bulkhead import reset_bulkheads
from resilience.settings import get_settings


def reset_state() -> None:
    """Closed breakers, empty bulkheads, unlearned deadlines, settings reloaded."""
    reset_breakers()
    reset_bulkheads()
    reset_adaptive_deadlines()
    get_settings.cache_clear()
