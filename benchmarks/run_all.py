"""Every benchmark scenario in one run: a markdown summary, targets with PASS/MISS, plots.

Run from the repository root::

    .venv/bin/python benchmarks/run_all.py [--quick] [--out DIR] [--only NAME ...] [--strict]

Scenarios, in the order they run (the real-time ones first, in a fresh process):

1. ``overhead``: per-call cost of the policies against the libraries (real time);
2. ``scale``: 10 to 10,000 concurrent calls through one stack (real time);
3. ``tier_speedup``: the retrieval tier sequential vs parallel (simulated time);
4. ``outage``: one backend hangs mid-run (simulated time);
5. ``heavy_tail``: 1% of calls take 100x the median (simulated time).

It prints each scenario's table and then every target with its measured figure and
verdict, and writes ``summary.md``, ``summary.json`` and the PNG plots into ``DIR``
(default ``benchmarks/results/``, which git ignores). Real-time figures are ratios of
variants measured side by side in this process; simulated-time figures come from a
fixed seed and are the same on every run. ``--quick`` runs tiny sizes (a smoke run:
the figures mean nothing). ``--strict`` exits with status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import heavy_tail
import outage
import overhead
import scale
import tier_speedup
from _stats import Target, targets_table

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path("benchmarks/results")
OVERHEAD_TITLE = "Overhead per call (real time)"


def run_overhead(out_dir: Path | None = None, *, quick: bool = False) -> dict[str, Any]:  # noqa: ARG001 - no plots
    """``benchmarks/overhead.py`` at its default (or quick) sizes, as a scenario result."""
    if quick:
        rounds, batch, warmup = overhead.QUICK_ROUNDS, overhead.QUICK_BATCH, overhead.QUICK_WARMUP
    else:
        rounds, batch = overhead.DEFAULT_ROUNDS, overhead.DEFAULT_BATCH
        warmup = overhead.DEFAULT_WARMUP
    started = time.perf_counter()
    variants = overhead.build_variants()
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        samples = runner.run(overhead.measure(variants, rounds=rounds, batch=batch, warmup=warmup))
    summary = overhead.summarize(variants, samples)
    header = (
        f"Median cost per call: {rounds} rounds x {batch} calls (+{warmup} warm-up rounds), "
        f"standard event loop, Python {platform.python_version()}."
    )
    targets = [
        Target("overhead", target["label"], target["ratio"], target["limit"])
        for target in summary["targets"]
        if target["limit"] is not None
    ]
    return {
        "scenario": "overhead",
        "title": OVERHEAD_TITLE,
        "settings": {"rounds": rounds, "batch": batch, "warmup": warmup},
        "figures": {
            **{f"{row['key']}_ns": row["median_ns"] for row in summary["rows"]},
            **{f"{row['key']}_iqr_pct": row["iqr_pct"] for row in summary["rows"]},
            **{f"{t['numerator']}_per_{t['denominator']}": t["ratio"] for t in summary["targets"]},
        },
        "targets": targets,
        "table": overhead.render(summary, header),
        "plots": [],
        "wall_s": time.perf_counter() - started,
    }


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "overhead": run_overhead,
    "scale": scale.run,
    "tier_speedup": tier_speedup.run,
    "outage": outage.run,
    "heavy_tail": heavy_tail.run,
}


def environment(*, quick: bool) -> dict[str, Any]:
    """Where and when the figures were taken."""
    commit = None
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - read-only, whatever git is on PATH
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        commit = done.stdout.strip() or None
    except OSError:
        pass
    return {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "commit": commit,
        "libraries": {
            name: version(name) for name in ("tenacity", "aiobreaker", "stamina", "structlog")
        },
        "quick": quick,
    }


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def render_markdown(
    results: Sequence[dict[str, Any]], targets: Sequence[Target], env: dict[str, Any], out_dir: Path
) -> str:
    """The whole run as one markdown document (plots linked relative to ``out_dir``)."""
    libraries = ", ".join(f"{name} {v}" for name, v in env["libraries"].items())
    command = f"`.venv/bin/python benchmarks/run_all.py{' --quick' if env['quick'] else ''}`"
    where = (
        f"{command} on {env['date_utc']} UTC, commit {env['commit'] or 'unknown'}; "
        f"Python {env['python']}, {env['machine']}; {libraries}."
    )
    lines = [
        "# Benchmark results",
        "",
        where,
        "",
        "## Targets",
        "",
        targets_table(targets),
    ]
    for number, result in enumerate(results, start=1):
        lines += ["", f"## {number}. {result['title']}", "", result["table"]]
        for plot in result["plots"]:
            name = Path(plot).name
            relative = os.path.relpath(plot, out_dir)
            lines += ["", f"![{Path(name).stem}]({relative})"]
    return "\n".join(lines) + "\n"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--only", nargs="+", choices=list(SCENARIOS), metavar="NAME", help="run these scenarios"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios, print the tables and targets, write the summary and plots."""
    args = _parse(argv)
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    overhead.configure_logging()
    env = environment(quick=args.quick)
    started = time.perf_counter()
    results = []
    for name in args.only or SCENARIOS:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        result = SCENARIOS[name](out_dir, quick=args.quick)
        print(f"  {name} took {result['wall_s']:.1f} s", file=sys.stderr, flush=True)
        results.append(result)
        print(f"\n## {result['title']}\n\n{result['table']}\n", flush=True)
    targets: list[Target] = [target for result in results for target in result["targets"]]
    wall_s = time.perf_counter() - started
    print("## Targets\n")
    print(targets_table(targets))
    plots = [plot for result in results for plot in result["plots"]]
    markdown = render_markdown(results, targets, env, out_dir)
    (out_dir / "summary.md").write_text(markdown)
    document = {
        "environment": env,
        "wall_s": wall_s,
        "targets": [target.as_dict() for target in targets],
        "scenarios": {
            result["scenario"]: {
                key: value for key, value in result.items() if key not in {"table", "targets"}
            }
            | {"targets": [target.as_dict() for target in result["targets"]]}
            for result in results
        },
    }
    (out_dir / "summary.json").write_text(json.dumps(_finite(document), indent=2) + "\n")
    print(f"\nwrote {out_dir / 'summary.md'}, {out_dir / 'summary.json'}")
    for plot in plots:
        print(f"wrote {plot}")
    passed = sum(target.passed for target in targets)
    print(f"{passed}/{len(targets)} targets met; took {wall_s:.0f} s")
    if args.strict and passed < len(targets):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
