"""The README cannot rot: its settings table is generated, its quick start runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from resilience.settings import settings_table

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_settings_table_matches_the_settings() -> None:
    block = re.search(
        r"<!-- settings-table -->\n(.*?)\n<!-- /settings-table -->", README, re.DOTALL
    )
    assert block is not None
    assert block.group(1) == settings_table()


def test_readme_python_blocks_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
    assert blocks
    for code in blocks:
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr


def test_ci_runs_the_readme_test_command() -> None:
    assert "bash scripts/test" in README
    assert "bash scripts/test" in (ROOT / ".ci" / "run").read_text()
