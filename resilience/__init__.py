"""Composable resilience policies and parallel tiers for async services."""

from resilience.adaptive import AdaptiveDeadline, adaptive_deadline
from resilience.breaker import Breaker, CircuitBreakerPolicy, circuit_breaker
from resilience.bulkhead import Bulkhead, BulkheadPolicy, bulkhead, priority
from resilience.deadline import deadline
from resilience.errors import (
    CircuitOpenError,
    ClientError,
    ConfigurationError,
    DeadlineExceeded,
    DefaultFactoryError,
    QueueFullError,
    ResilienceError,
    TransientError,
)
from resilience.events import Event, add_observer, remove_observer
from resilience.fallback import SafeDefault, safe_default
from resilience.pipeline import CallContext, Pipeline, Policy, compose
from resilience.retry import RetryPolicy, retry
from resilience.settings import PolicySettings, ResilienceSettings, TierSettings, policy_for
from resilience.tiers import Task, Tier
from resilience.timeout import TimeoutPolicy, timeout

__all__ = [
    "AdaptiveDeadline",
    "Breaker",
    "Bulkhead",
    "BulkheadPolicy",
    "CallContext",
    "CircuitBreakerPolicy",
    "CircuitOpenError",
    "ClientError",
    "ConfigurationError",
    "DeadlineExceeded",
    "DefaultFactoryError",
    "Event",
    "Pipeline",
    "Policy",
    "PolicySettings",
    "QueueFullError",
    "ResilienceError",
    "ResilienceSettings",
    "RetryPolicy",
    "SafeDefault",
    "Task",
    "Tier",
    "TierSettings",
    "TimeoutPolicy",
    "TransientError",
    "adaptive_deadline",
    "add_observer",
    "bulkhead",
    "circuit_breaker",
    "compose",
    "deadline",
    "policy_for",
    "priority",
    "remove_observer",
    "retry",
    "safe_default",
    "timeout",
]
