"""Forgetting process-wide state between tests."""

from resilience.adaptive import reset_adaptive_deadlines
from resilience.breaker import reset_breakers
from resilience.settings import get_settings


def reset_state() -> None:
    """Closed breakers, unlearned deadlines, settings reloaded from the environment."""
    reset_breakers()
    reset_adaptive_deadlines()
    get_settings.cache_clear()
