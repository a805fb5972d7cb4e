"""mypy sees a resilient() service as the service itself: right calls pass, wrong ones fail."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ROOT / "tests" / "typing" / "check_resilient.py"

#: Each line marked ``# E: <code>`` must be rejected by mypy with that error code.
MISUSE = """\
from adapters import Document, resilient
from adapters.http import HttpBackend


class Retriever:
    async def retrieve(self, query: str, *, top_k: int) -> list[Document]:
        return []

    def name(self) -> str:
        return "r"


async def misuse(http: HttpBackend) -> None:
    rag = resilient(Retriever(), backend="rag")
    wrong: list[str] = await rag.retrieve("q", top_k=3)  # E: assignment
    await rag.retrieve("q", top_k="3")  # E: arg-type
    await rag.retrieve("q", 3)  # E: call-arg
    await rag.retreive("q", top_k=3)  # E: attr-defined
    number: int = rag.name()  # E: assignment
    await http.get("/items", timeout=3)  # E: call-arg
"""

_ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory):
    """One mypy run (strict, the project's config) over both files: (file, line, code)."""
    workdir = tmp_path_factory.mktemp("mypy")
    misuse = workdir / "misuse_resilient.py"
    misuse.write_text(MISUSE)
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    command += ["--cache-dir", str(workdir / "cache"), "--no-pretty", "--no-error-summary"]
    command += [str(CHECKED), str(misuse)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    errors = set()
    for line in run.stdout.splitlines():
        if match := _ERROR.match(line):
            errors.add((Path(match["path"]).name, int(match["line"]), match["code"]))
        elif ": note: " not in line:
            pytest.fail(f"unexpected mypy output: {line}\n{run.stdout}{run.stderr}")
    assert run.returncode == (1 if errors else 0), run.stdout + run.stderr
    return errors


def test_the_typing_checks_pass(mypy_errors):
    assert {error for error in mypy_errors if error[0] == CHECKED.name} == set()


def test_wrong_calls_on_a_wrapped_service_are_rejected(mypy_errors):
    expected = {
        ("misuse_resilient.py", number, marker.split("# E: ")[1])
        for number, marker in enumerate(MISUSE.splitlines(), start=1)
        if "# E: " in marker
    }
    assert {error for error in mypy_errors if error[0] == "misuse_resilient.py"} == expected
