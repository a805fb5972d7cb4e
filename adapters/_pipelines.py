"""The pipeline an adapter runs a backend's calls through."""

from __future__ import annotations

from resilience.pipeline import Pipeline, Policy
from resilience.retry import RetryPolicy
from resilience.settings import policy_for


def resolve_pipeline(backend: str, policy: Policy | None) -> Pipeline:
    """``policy`` bound to ``backend``, or the pipeline the environment configures for it.

    Resolved when the adapter is built, so bad settings fail there and not on a request.
    """
    if not isinstance(backend, str) or not backend:
        raise ValueError(f"backend must be a non-empty name, got {backend!r}")
    if policy is None:
        return policy_for(backend)
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a resilience Policy or Pipeline, got {policy!r}")
    policies = policy.policies if isinstance(policy, Pipeline) else (policy,)
    return Pipeline(policies, backend).bind(backend)


def without_retry(pipeline: Pipeline) -> Pipeline:
    """The same pipeline minus its retry policies, nested pipelines included.

    For calls that must reach the backend at most once (non-idempotent writes): they keep
    their timeout, breaker and fallback, but a timeout or transient failure is not retried.
    """
    kept: list[Policy] = []
    for policy in pipeline.policies:
        if isinstance(policy, RetryPolicy):
            continue
        kept.append(without_retry(policy) if isinstance(policy, Pipeline) else policy)
    return Pipeline(tuple(kept), pipeline.backend)
