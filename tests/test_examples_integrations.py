"""The integration examples (LangGraph, HTTP) run here, in-process and as programs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from resilience.events import RetryScheduled, TimedOut
from tests._examples import load_example

ROOT = Path(__file__).parent.parent


def run_example(name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_the_langgraph_workflow_answers_every_request_with_rag_down():
    example = load_example("langgraph_workflow")
    responses = await example.serve(3)
    assert len(responses) == 3
    for response in responses:
        state = response.state
        assert state.keys() >= example.STATE_KEYS
        assert state["documents"] == []  # RAG is down: its default
        assert state["memories"]  # the other backends answered
        assert state["answer"].text
        assert state["memory_saved"] is True
        retrieval = state["metadata"]["retrieval"]["tasks"]
        assert retrieval["documents"]["status"] in {"failed", "fallback"}
        assert retrieval["memories"]["status"] == "ok"
        assert state["metadata"]["post_generation"]["failed"] == 0
        assert response.progress_events > 0
    statuses = [r.state["metadata"]["retrieval"]["tasks"]["documents"] for r in responses]
    assert statuses[-1]["error"] == "CircuitOpenError"  # the breaker opened on the way


def test_the_langgraph_workflow_runs_as_a_program():
    out = run_example("langgraph_workflow", "--requests", "2")
    assert "req-0 at t=" in out
    assert "retrieval       parallel" in out
    assert "documents: failed (ConnectionError, attempts: 3)" in out
    assert "State check: 2/2 responses had every state key." in out


async def test_the_http_example_honours_retry_after_and_cuts_the_hang():
    flaky, hung, post = await load_example("http_backend").demo()

    assert flaky.outcome == "200 'fresh items'"
    assert flaky.requests == pytest.approx([0.0, 1.0])
    [retried] = flaky.steps
    assert isinstance(retried, RetryScheduled)
    assert (retried.delay_s, retried.hinted) == (1.0, True)

    assert hung.outcome.startswith("DeadlineExceeded")
    assert len(hung.requests) == 3
    assert [type(step) for step in hung.steps] == [TimedOut, RetryScheduled] * 2 + [TimedOut]
    assert 3.0 <= hung.finished - hung.started <= 3.0 + 0.2 + 0.4  # three limits, two backoffs

    assert post.outcome.startswith("HttpError: POST")
    assert "503" in post.outcome
    assert len(post.requests) == 1
    assert post.steps == []


def test_the_http_example_runs_as_a_program():
    out = run_example("http_backend")
    assert "retrying in 1.000 s, as the server's Retry-After asked" in out
    assert "-> 200 'fresh items'" in out
    assert "attempt 3 timed out after 1.0 s" in out
    assert "-> DeadlineExceeded" in out
    assert "not retried: POST is not idempotent" in out
