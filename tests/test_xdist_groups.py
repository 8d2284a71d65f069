"""The suite's `xdist_group`s hold: the tests that share a service (the SLURM cluster, PostgreSQL, a
Ray cluster) run on one pytest-xdist worker, one at a time (pyproject's `--dist loadgroup`).

pytest 9.2 made pytest-xdist 3.8 drop the groups without a word (pytest-dev/pytest-xdist#1386: xdist
carries a test's group in its node id, which pytest 9.2 no longer lets a plugin rewrite), and two
SLURM tests shared the test cluster's 2 CPUs at once. pyproject's test extra keeps pytest below 9.2
until xdist is fixed; this test says so if an installed pair loses the groups again."""

import os
import re
import subprocess
import sys

import pytest

from benchmarks.suite_timeline import main as timeline
from tests.conftest import ROOT

GROUPED = '''
import pytest
pytestmark = pytest.mark.xdist_group("shared")

@pytest.mark.parametrize("i", range(6))
def test_in_group(i):
    pass
'''


def test_one_groups_tests_all_run_on_one_worker(tmp_path, capsys):
    for name in ("test_a.py", "test_b.py"):
        (tmp_path / name).write_text(GROUPED)
    (tmp_path / "test_free.py").write_text("import pytest\n@pytest.mark.parametrize('i', range(6))\n"
                                           "def test_free(i):\n    pass\n")
    record = tmp_path / "timeline.jsonl"  # benchmarks/suite_timeline.py, the plugin that found the split
    env = {**os.environ, "SUITE_TIMELINE": str(record), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p",
                           "no:cacheprovider", "-p", "benchmarks.suite_timeline", "-c", "/dev/null", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    workers = {m[1] for m in re.finditer(r"\[(gw\d+)\] .*PASSED .*test_[ab]\.py::test_in_group", proc.stdout)}
    ran = len(re.findall(r"PASSED .*test_[ab]\.py::test_in_group", proc.stdout))
    assert ran == 12 and len(workers) == 1, (
        f"the 12 tests of one xdist_group ran on {sorted(workers)}: this pytest and pytest-xdist drop the "
        "groups (pytest-dev/pytest-xdist#1386); pip install -e '.[test]' installs a pair that keeps them\n"
        + proc.stdout[-2000:])
    timeline([str(record)])  # the plugin saw the same: one worker ran the group, the group in its node ids
    summary = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in summary if line.endswith("groups: shared")] == sorted(workers), summary


def test_the_suite_timeline_names_each_workers_tests_and_groups(tmp_path, capsys):
    lines = [("gw0", "start", "t.py::a@shared", 0.0), ("gw1", "start", "t.py::b[1]", 1.0),
             ("gw0", "end", "t.py::a@shared", 40.0), ("gw1", "end", "t.py::b[1]", 3.0)]
    record = tmp_path / "t.jsonl"
    record.write_text("".join(f'{{"w": "{w}", "ev": "{ev}", "id": "{i}", "t": {t + 1000}}}\n' for w, ev, i, t in lines))
    timeline([str(record), "--over", "25"])
    out = capsys.readouterr().out.splitlines()
    assert out == ["gw0: 1 tests, busy 40 s, last end 40 s, groups: shared",
                   "       0     40    40 s  t.py::a@shared",
                   "gw1: 1 tests, busy 2 s, last end 3 s, groups: none"]


@pytest.mark.parametrize("content", [None, ""])
def test_the_suite_timeline_refuses_a_missing_or_empty_record_in_one_line(tmp_path, capsys, content):
    record = tmp_path / "t.jsonl"
    if content is not None:
        record.write_text(content)
    with pytest.raises(SystemExit) as stop:
        timeline([str(record)])
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("python -m benchmarks.suite_timeline: error: ") and str(record) in last, last
    assert ("empty" in last) == (content == "")
