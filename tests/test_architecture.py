"""The layers' import boundaries (pyproject's [tool.importlinter] contracts) hold, the code's style
(pyproject's [tool.ruff]) is clean, and the package's and the benchmarks' types check (pyproject's [tool.mypy])."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tool(name: str) -> str:
    """A console script of the test extra: on PATH, else beside this Python (a venv not activated)."""
    return shutil.which(name) or str(Path(sys.executable).parent / name)


def test_import_contracts_hold():
    exe = tool("lint-imports")
    proc = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    contracts = (ROOT / "pyproject.toml").read_text().count("[[tool.importlinter.contracts]]")
    assert contracts >= 3 and f"{contracts} kept, 0 broken" in proc.stdout  # every contract was checked


def test_ruff_finds_nothing_in_the_code_the_tests_and_the_benchmarks():
    proc = subprocess.run([tool("ruff"), "check", "--no-cache", "--output-format", "concise", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    listed = subprocess.run([tool("ruff"), "check", "--no-cache", "--show-files", "."], cwd=ROOT,
                            capture_output=True, text=True, timeout=120).stdout
    for part in ("colorize/training/loop.py", "tests/test_architecture.py", "benchmarks/common.py"):
        assert part in listed, f"ruff did not check {part}"  # the config's excludes leave the code in


def test_mypy_finds_nothing_in_the_package_and_the_benchmarks():
    # (a fresh clone's first check takes ~20 s; .mypy_cache/ makes the next ones quick)
    proc = subprocess.run([tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    checked = re.search(r"no issues found in (\d+) source files", proc.stdout)
    files = sum(len(list((ROOT / part).rglob("*.py"))) for part in ("colorize", "benchmarks"))
    assert checked and int(checked.group(1)) == files, proc.stdout  # pyproject's `files`: both, whole
