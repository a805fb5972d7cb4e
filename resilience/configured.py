"""Building a backend's pipeline from its settings, in the canonical order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from resilience.adaptive import adaptive_deadline
from resilience.breaker import circuit_breaker
from resilience.bulkhead import bulkhead
from resilience.pipeline import Pipeline, Policy, compose
from resilience.retry import retry
from resilience.timeout import timeout

if TYPE_CHECKING:
    from resilience.settings import PolicySettings


def build_pipeline(backend: str, s: PolicySettings) -> Pipeline:
    """Bulkhead -> retry -> circuit breaker -> timeout or adaptive deadline, bound to ``backend``.

    The bulkhead is outermost so a call holds one slot for all its attempts: retries of a
    struggling backend cannot multiply its load past ``max_concurrency``.
    """
    policies: list[Policy] = []
    if s.max_concurrency is not None:
        policies.append(
            bulkhead(
                s.max_concurrency,
                queue_size=s.queue_size,
                queue_timeout_s=s.queue_timeout_s,
                name=backend,
            )
        )
    if s.retry_attempts > 1:
        policies.append(
            retry(
                attempts=s.retry_attempts,
                initial_delay_s=s.retry_initial_delay_s,
                max_delay_s=s.retry_max_delay_s,
                total_time_s=s.retry_total_time_s,
            )
        )
    if s.breaker_enabled:
        policies.append(
            circuit_breaker(
                name=backend,
                failure_threshold=s.breaker_failure_threshold,
                reset_timeout_s=s.breaker_reset_timeout_s,
                half_open_max_calls=s.breaker_half_open_max_calls,
            )
        )
    if s.adaptive_deadline:
        policies.append(
            adaptive_deadline(
                quantile=s.adaptive_quantile,
                multiplier=s.adaptive_multiplier,
                min_s=s.adaptive_min_s,
                max_s=s.adaptive_max_s,
                initial_s=s.timeout_s,
                min_samples=s.adaptive_min_samples,
                window_size=s.adaptive_window,
            )
        )
    else:
        policies.append(timeout(s.timeout_s))
    return compose(*policies, backend=backend).bind(backend)
