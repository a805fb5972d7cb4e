"""Every example runs here, so examples cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests._examples import load_example

ROOT = Path(__file__).parent.parent


async def test_flaky_backend_answers_every_request_through_an_outage() -> None:
    report = await load_example("flaky_backend").serve(300)
    assert report["answered"] == 300
    assert report["calls rejected by the open breaker"] > 0
    assert "closed->open" in report["breaker transitions"]
    assert report["backend calls"] < 300 * 3


def test_flaky_backend_runs_as_a_program() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "flaky_backend.py"), "--requests", "50"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "answered                            50" in result.stdout
