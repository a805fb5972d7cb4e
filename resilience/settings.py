"""Configuration from the environment, validated when it is loaded.

Variables use the prefix ``RESILIENCE_`` and ``__`` between levels::

    RESILIENCE_DEFAULTS__TIMEOUT_S=3          # every backend
    RESILIENCE_BACKENDS__RAG__TIMEOUT_S=2     # only backend "rag"; its other fields stay default
    RESILIENCE_TIERS__RETRIEVAL__PARALLEL=false

A bad value raises :class:`ConfigurationError` naming the variable, at load time.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Self

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from resilience.errors import ConfigurationError

if TYPE_CHECKING:
    from resilience.pipeline import Pipeline

ENV_PREFIX = "RESILIENCE_"

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True
    )


class PolicySettings(_Strict):
    """One backend's policies; every field can be set for all or for one backend."""

    timeout_s: Seconds = 5.0
    """Per-attempt limit in seconds (and the adaptive deadline's starting value)."""
    adaptive_deadline: bool = False
    """Learn the per-attempt limit from recent latencies instead of using ``timeout_s``."""
    adaptive_quantile: Annotated[float, Field(gt=0, le=1)] = 0.99
    """Latency quantile the adaptive limit follows."""
    adaptive_multiplier: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 1.5
    """Head room: the adaptive limit is the quantile times this."""
    adaptive_min_s: Seconds = 0.05
    """Lowest adaptive limit in seconds."""
    adaptive_max_s: Seconds = 30.0
    """Highest adaptive limit in seconds."""
    adaptive_min_samples: Count = 20
    """Successful calls needed before the limit adapts (until then: ``timeout_s``)."""
    adaptive_window: Count = 1000
    """Most recent latencies kept per backend (bounds memory)."""
    retry_attempts: Count = 3
    """Attempts in all, the first included; 1 turns retries off."""
    retry_initial_delay_s: Seconds = 0.1
    """First backoff window in seconds; it doubles per retry (full jitter)."""
    retry_max_delay_s: Seconds = 10.0
    """Largest backoff window in seconds."""
    retry_total_time_s: Seconds | None = None
    """Stop retrying when the next sleep would end past this many seconds (unset: no limit)."""
    breaker_enabled: bool = True
    """Put a circuit breaker in front of the backend."""
    breaker_failure_threshold: Count = 5
    """Consecutive failures that open the breaker."""
    breaker_reset_timeout_s: Seconds = 30.0
    """Seconds the breaker stays open before admitting trial calls."""
    breaker_half_open_max_calls: Count = 1
    """Trial calls admitted at once while half-open; that many successes close it."""
    max_concurrency: Count | None = None
    """Bulkhead: calls in flight at once for this backend (unset: unlimited)."""
    queue_size: Annotated[int, Field(ge=0)] = 100
    """Calls that may wait for a bulkhead slot; more are rejected at once."""
    queue_timeout_s: Seconds = 5.0
    """Longest wait in seconds for a bulkhead slot."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.adaptive_deadline and not (
            self.adaptive_min_s <= self.timeout_s <= self.adaptive_max_s
        ):
            raise ValueError(
                "with adaptive_deadline, need adaptive_min_s <= timeout_s <= adaptive_max_s"
            )
        if self.adaptive_min_samples > self.adaptive_window:
            raise ValueError("adaptive_min_samples cannot exceed adaptive_window")
        if self.retry_initial_delay_s > self.retry_max_delay_s:
            raise ValueError("retry_initial_delay_s cannot exceed retry_max_delay_s")
        return self


class TierSettings(_Strict):
    """One tier's run options."""

    parallel: bool = True
    """``false``: run the tier's tasks one after the other (same results and metadata)."""
    timeout_s: Seconds = 5.0
    """Budget in seconds for the whole tier; unfinished tasks get their defaults."""
    metadata_key: str | None = None
    """Key under ``state["metadata"]`` for the tier's metadata (unset: the tier's name)."""


class ResilienceSettings(BaseSettings):
    """Every policy's defaults, per-backend overrides and per-tier options."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        # A .env file is shared with the rest of the application: its other variables are
        # not ours. Unknown RESILIENCE_* names are still rejected (_unknown_variables).
        extra="ignore",
        frozen=True,
    )

    defaults: PolicySettings = PolicySettings()
    backends: dict[str, dict[str, Any]] = {}
    tiers: dict[str, TierSettings] = {}

    @field_validator("backends", "tiers", mode="before")
    @classmethod
    def _lower_case_names(cls, value: object) -> object:
        """Names are case-insensitive, as environment variable names are."""
        if isinstance(value, Mapping):
            return {str(name).lower(): entry for name, entry in value.items()}
        return value

    _resolved: dict[str, PolicySettings] = PrivateAttr(default_factory=dict)
    _pipelines: dict[str, Pipeline] = PrivateAttr(default_factory=dict)

    def __init__(self, **values: Any) -> None:  # noqa: ANN401 - pydantic's own signature
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigurationError(_problems(exc)) from None
        problems = _unknown_variables({**_dotenv(self.model_config.get("env_file")), **os.environ})
        for name, overrides in self.backends.items():
            merged = {**self.defaults.model_dump(), **overrides}
            try:
                self._resolved[name] = PolicySettings.model_validate(merged)
            except ValidationError as exc:
                problems.update(_problems(exc, ("backends", name)))
        if problems:
            raise ConfigurationError(problems)

    def for_backend(self, backend: str) -> PolicySettings:
        """The backend's settings: its overrides on top of the defaults."""
        return self._resolved.get(backend.lower(), self.defaults)

    def for_tier(self, tier: str) -> TierSettings:
        """The tier's settings (defaults when the environment names none)."""
        return self.tiers.get(tier.lower(), TierSettings())

    def policy(self, backend: str) -> Pipeline:
        """The backend's composed pipeline, built once per backend and settings object."""
        name = backend.lower()  # one pipeline, and one breaker, for "RAG" and "rag"
        pipeline = self._pipelines.get(name)
        if pipeline is None:
            from resilience.configured import build_pipeline  # noqa: PLC0415 - import cycle

            pipeline = self._pipelines[name] = build_pipeline(name, self.for_backend(name))
        return pipeline


def settings_table() -> str:
    """The README's table of every variable, its default and meaning (kept in sync by a test)."""

    def rows(scope: str, model: type[BaseModel]) -> list[str]:
        return [
            f"| `{ENV_PREFIX}{scope}{name.upper()}` "
            f"| {'unset' if field.default is None else str(field.default).lower()} "
            f"| {(field.description or '').replace('``', '`')} |"
            for name, field in model.model_fields.items()
        ]

    return "\n".join(
        [
            "| variable | default | meaning |",
            "| --- | --- | --- |",
            *rows("DEFAULTS__", PolicySettings),
            (
                f"| `{ENV_PREFIX}BACKENDS__<NAME>__<FIELD>` | the default's "
                "| Any field above, for one backend only; its other fields keep the defaults. |"
            ),
            *rows("TIERS__<NAME>__", TierSettings),
        ]
    )


def variable_name(loc: tuple[str | int, ...]) -> str:
    """The environment variable a validation error location stands for."""
    return ENV_PREFIX + "__".join(str(part).upper() for part in loc)


def _problems(exc: ValidationError, prefix: tuple[str, ...] = ()) -> dict[str, str]:
    problems: dict[str, str] = {}
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        name = variable_name(loc) if loc else f"{ENV_PREFIX}*"
        if error["loc"]:  # one field: show its value
            problems[name] = f"{error['msg']} (got {error.get('input')!r})"
        else:  # a rule across fields: the message names them; the input is all of them
            problems[name] = f"{error['msg']} (fields may come from {ENV_PREFIX}DEFAULTS__*)"
    return problems


def _dotenv(env_file: object) -> dict[str, str]:
    """The variables of the configured .env file(s) that exist, as pydantic-settings reads them."""
    files = env_file if isinstance(env_file, list | tuple) else [env_file]
    found: dict[str, str] = {}
    for file in files:
        if isinstance(file, str | os.PathLike) and Path(file).is_file():
            found.update({k: v or "" for k, v in dotenv_values(file).items()})
    return found


def _unknown_variables(environ: Mapping[str, str]) -> dict[str, str]:
    known = set(ResilienceSettings.model_fields)
    problems = {}
    for key in environ:
        if key.upper().startswith(ENV_PREFIX):
            head = key[len(ENV_PREFIX) :].split("__", 1)[0].lower()
            if head not in known:
                problems[key] = f"unknown setting; known: {', '.join(sorted(known))}"
    return problems


@functools.cache
def get_settings() -> ResilienceSettings:
    """The process's settings, loaded from the environment on first use."""
    return ResilienceSettings()


def policy_for(backend: str, *, settings: ResilienceSettings | None = None) -> Pipeline:
    """The pipeline for ``backend`` as the environment configures it (built once)."""
    return (settings or get_settings()).policy(backend)
