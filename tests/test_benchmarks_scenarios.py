"""Each benchmark scenario runs end to end at tiny sizes and produces its figures and plots.

These pin that the benchmarks still run, not what they measure: the figures at these sizes
mean nothing.
"""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
PNG = b"\x89PNG\r\n\x1a\n"
RESULT_KEYS = {"scenario", "title", "settings", "figures", "targets", "table", "plots", "wall_s"}


@pytest.fixture
def bench(monkeypatch):
    """Import a benchmark module the way ``run_all.py`` sees it (its folder on the path)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(result, name, positive, plots, tmp_path):
    assert set(result) >= RESULT_KEYS
    assert result["scenario"] == name
    figures = result["figures"]
    for key in positive:
        assert _number(figures[key]), (key, figures[key])
        assert figures[key] > 0, (key, figures[key])
    for key, value in figures.items():
        if isinstance(value, float):
            assert math.isfinite(value), (key, value)
    assert result["targets"]
    for target in result["targets"]:
        assert target.scenario == name
        assert _number(target.measured), target
        assert target.verdict in {"PASS", "MISS"}
        assert " | ".join(target.row())
    assert result["table"].startswith("| ")
    assert [Path(path).name for path in result["plots"]] == plots
    for path in result["plots"]:
        written = Path(path)
        assert written.parent == tmp_path
        assert written.read_bytes().startswith(PNG)


def test_tier_speedup_scenario_runs(bench, tmp_path):
    tier_speedup = bench("tier_speedup")
    result = tier_speedup.run(tmp_path, requests=12, realtime_requests=3)
    positive = [
        "sequential_p50_s", "sequential_p99_s", "parallel_p50_s", "parallel_p99_s",
        "ideal_p99_s", "speedup_mean", "ideal_speedup_mean", "efficiency_median",
        "realtime_gap_p99_ms", "realtime_efficiency_median",
    ]  # fmt: skip
    _check(result, "tier_speedup", positive, ["tier_speedup.png"], tmp_path)
    assert result["figures"]["requests"] == 12
    assert result["figures"]["realtime_requests"] == 3


def test_outage_scenario_runs(bench, tmp_path):
    outage = bench("outage")
    result = outage.run(tmp_path, quick=True)
    positive = [
        "healthy_p99_s", "original_during_p99_s", "toolkit_during_p99_s", "toolkit_after_p99_s",
        "toolkit_calls_until_open", "toolkit_failures_until_open", "toolkit_open_p99_vs_healthy",
        "original_recovery_s", "toolkit_recovery_s", "original_calls_to_dead_backend",
    ]  # fmt: skip
    _check(result, "outage", positive, ["outage_latency.png"], tmp_path)


def test_heavy_tail_scenario_runs(bench, tmp_path):
    heavy_tail = bench("heavy_tail")
    result = heavy_tail.run(tmp_path, requests=150)
    positive = [
        "fixed_p99_s", "fixed_p99.9_s", "adaptive_p99_s", "adaptive_p99.9_s", "adaptive_calls",
        "learned_deadline_s", "p99_improvement", "sensitivity_fixed_p99_s",
    ]  # fmt: skip
    _check(result, "heavy_tail", positive, ["heavy_tail_cdf.png"], tmp_path)
    assert result["figures"]["requests"] == 150
    assert result["figures"]["adaptive_extra_calls_per_request"] >= 0


def test_scale_scenario_runs(bench, tmp_path):
    scale = bench("scale")
    # A real event loop: a plain test has none running.
    result = scale.run(tmp_path, sizes=(4, 40), calls=80, rounds=1)
    positive = [
        f"{stack}_{figure}_{n}"
        for stack in ("toolkit", "bare")
        for figure in ("ns_per_call", "calls_per_s", "bytes_per_call")
        for n in (4, 40)
    ] + ["toolkit_time_ratio", "toolkit_memory_ratio"]
    _check(result, "scale", positive, ["scale.png"], tmp_path)


def test_run_all_quick_writes_the_summary_and_every_plot(tmp_path):
    # Its own process: the overhead scenario reconfigures structlog for the whole process.
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["scenarios"]) == {
        "overhead",
        "scale",
        "tier_speedup",
        "outage",
        "heavy_tail",
    }
    assert len(summary["targets"]) >= 10
    for target in summary["targets"]:
        assert _number(target["measured"]), target
        assert f"| {target['verdict']} |" in done.stdout
    markdown = (tmp_path / "summary.md").read_text()
    assert "## Targets" in markdown
    for name in ("scale", "tier_speedup", "outage_latency", "heavy_tail_cdf"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG)
        assert f"]({name}.png)" in markdown
