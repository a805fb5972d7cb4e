"""ResilienceSettings and policy_for(): environment in, validated pipelines out."""

from __future__ import annotations

import pytest

from resilience import ConfigurationError, ResilienceSettings, policy_for
from resilience.adaptive import AdaptiveDeadline
from resilience.breaker import CircuitBreakerPolicy
from resilience.retry import RetryPolicy
from resilience.settings import PolicySettings, get_settings
from resilience.timeout import TimeoutPolicy


def test_defaults_without_environment() -> None:
    settings = ResilienceSettings()
    assert settings.for_backend("rag") == PolicySettings()
    assert settings.for_backend("rag").timeout_s == 5.0
    assert settings.for_tier("retrieval").parallel is True
    assert settings.for_tier("retrieval").timeout_s == 5.0


def test_a_backend_override_changes_one_field_and_leaves_the_rest(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_BACKENDS__RAG__TIMEOUT_S", "2")
    settings = ResilienceSettings()
    rag = settings.for_backend("rag")
    assert rag.timeout_s == 2.0
    assert rag.model_dump(exclude={"timeout_s"}) == PolicySettings().model_dump(
        exclude={"timeout_s"}
    )
    assert settings.for_backend("tools").timeout_s == 5.0


def test_overrides_apply_on_top_of_changed_defaults(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_DEFAULTS__RETRY_ATTEMPTS", "5")
    monkeypatch.setenv("RESILIENCE_BACKENDS__RAG__TIMEOUT_S", "2")
    settings = ResilienceSettings()
    assert settings.for_backend("rag").retry_attempts == 5
    assert settings.for_backend("memory").retry_attempts == 5


def test_tier_settings_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_TIERS__RETRIEVAL__PARALLEL", "false")
    monkeypatch.setenv("RESILIENCE_TIERS__RETRIEVAL__TIMEOUT_S", "1.5")
    tier = ResilienceSettings().for_tier("retrieval")
    assert tier.parallel is False
    assert tier.timeout_s == 1.5


def test_dotenv_file_may_hold_other_applications_variables(tmp_path, monkeypatch) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgres://x\nRESILIENCE_TIERS__A__PARALLEL=0\n")
    monkeypatch.chdir(tmp_path)
    assert ResilienceSettings().for_tier("a").parallel is False


def test_unknown_names_in_the_dotenv_file_are_rejected(tmp_path, monkeypatch) -> None:
    (tmp_path / ".env").write_text("RESILIENCE_TIMEOUT=3\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        ResilienceSettings()
    assert list(caught.value.problems) == ["RESILIENCE_TIMEOUT"]


def test_dotenv_file_is_read(tmp_path, monkeypatch) -> None:
    (tmp_path / ".env").write_text("RESILIENCE_BACKENDS__TOOLS__RETRY_ATTEMPTS=1\n")
    monkeypatch.chdir(tmp_path)
    assert ResilienceSettings().for_backend("tools").retry_attempts == 1


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RESILIENCE_BACKENDS__RAG__TIMEOUT_S", "-1"),
        ("RESILIENCE_BACKENDS__RAG__TIMEOUT_S", "0"),
        ("RESILIENCE_BACKENDS__RAG__TIMEOUT_S", "nan"),
        ("RESILIENCE_BACKENDS__RAG__TIMEOUT_S", "inf"),
        ("RESILIENCE_BACKENDS__RAG__TIMEOUT_S", "abc"),
        ("RESILIENCE_BACKENDS__RAG__TIMOUT_S", "2"),
        ("RESILIENCE_DEFAULTS__RETRY_ATTEMPTS", "0"),
        ("RESILIENCE_DEFAULTS__BREAKER_RESET_TIMEOUT_S", "inf"),
        ("RESILIENCE_DEFAULTS__ADAPTIVE_QUANTILE", "1.5"),
        ("RESILIENCE_DEFAULTS__TIMEOUTS", "3"),
        ("RESILIENCE_TIERS__RETRIEVAL__PARALLEL", "maybe"),
        ("RESILIENCE_TIERS__RETRIEVAL__TIMEOUT_S", "nan"),
        ("RESILIENCE_TIMEOUT_S", "3"),
    ],
)
def test_bad_values_fail_at_load_naming_the_variable(
    monkeypatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        ResilienceSettings()
    assert list(caught.value.problems) == [variable]
    assert variable in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_every_bad_variable_is_named_in_one_error(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_BACKENDS__RAG__TIMEOUT_S", "abc")
    monkeypatch.setenv("RESILIENCE_BACKENDS__TOOLS__RETRY_ATTEMPTS", "-3")
    with pytest.raises(ConfigurationError) as caught:
        ResilienceSettings()
    assert set(caught.value.problems) == {
        "RESILIENCE_BACKENDS__RAG__TIMEOUT_S",
        "RESILIENCE_BACKENDS__TOOLS__RETRY_ATTEMPTS",
    }


def test_inconsistent_adaptive_bounds_are_rejected(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_BACKENDS__RAG__ADAPTIVE_DEADLINE", "true")
    monkeypatch.setenv("RESILIENCE_BACKENDS__RAG__ADAPTIVE_MAX_S", "1")
    with pytest.raises(ConfigurationError, match="adaptive_max_s"):
        ResilienceSettings()


def test_policy_for_builds_the_canonical_order_once_per_backend() -> None:
    pipeline = policy_for("rag")
    assert [type(p) for p in pipeline.policies] == [
        RetryPolicy,
        CircuitBreakerPolicy,
        TimeoutPolicy,
    ]
    assert policy_for("rag") is pipeline
    assert policy_for("tools") is not pipeline
    assert pipeline.backend == "rag"


def test_policy_for_follows_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_BACKENDS__AGENT__RETRY_ATTEMPTS", "1")
    monkeypatch.setenv("RESILIENCE_BACKENDS__AGENT__BREAKER_ENABLED", "false")
    monkeypatch.setenv("RESILIENCE_BACKENDS__AGENT__ADAPTIVE_DEADLINE", "true")
    get_settings.cache_clear()
    pipeline = policy_for("agent")
    assert [type(p) for p in pipeline.policies] == [AdaptiveDeadline]
    assert pipeline.policies[0].current_s == 5.0


def test_backend_names_are_case_insensitive(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_BACKENDS__RAG__TIMEOUT_S", "2")
    assert ResilienceSettings().for_backend("RAG").timeout_s == 2.0


def test_settings_can_be_given_in_code() -> None:
    settings = ResilienceSettings(backends={"rag": {"timeout_s": 0.5}})
    assert policy_for("rag", settings=settings).policies[-1].seconds == 0.5  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="RESILIENCE_BACKENDS__RAG__TIMEOUT_S"):
        ResilienceSettings(backends={"rag": {"timeout_s": -1}})


def test_names_given_in_code_are_case_insensitive_too() -> None:
    settings = ResilienceSettings(
        backends={"RAG": {"timeout_s": 0.5}}, tiers={"Retrieval": {"parallel": False}}
    )
    assert settings.for_backend("rag").timeout_s == 0.5
    assert settings.for_backend("RAG").timeout_s == 0.5
    assert settings.for_tier("retrieval").parallel is False
    assert policy_for("RAG", settings=settings) is policy_for("rag", settings=settings)


def test_a_cross_field_rule_names_its_fields(monkeypatch) -> None:
    monkeypatch.setenv("RESILIENCE_DEFAULTS__RETRY_INITIAL_DELAY_S", "30")
    with pytest.raises(ConfigurationError) as caught:
        ResilienceSettings()
    assert "retry_initial_delay_s cannot exceed retry_max_delay_s" in str(caught.value)
    assert list(caught.value.problems) == ["RESILIENCE_DEFAULTS"]
