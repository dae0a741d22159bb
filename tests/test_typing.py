"""Type checkers see through @cached and @invalidate_cache (ParamSpec), checked with mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent / "typecheck"


def mypy(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir=/dev/null", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_correct_use_type_checks() -> None:
    result = mypy(HERE / "usage.py")
    assert result.returncode == 0, result.stdout


def test_misuse_is_caught() -> None:
    result = mypy(HERE / "misuse.py")
    expected = [
        i for i, line in enumerate((HERE / "misuse.py").read_text().splitlines(), 1) if "# E:" in line
    ]
    reported = sorted({int(line.split(":")[1]) for line in result.stdout.splitlines() if ": error:" in line})
    assert reported == expected, result.stdout
