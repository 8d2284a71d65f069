"""Where the test suite's time goes, per pytest-xdist worker: a pytest plugin that writes each test's
start and end, and a summary of that file.

    python -m pytest -n 2 -p benchmarks.suite_timeline          # writes outputs/suite_timeline.jsonl
    python -m benchmarks.suite_timeline [FILE] [--over 25]       # per worker: tests, busy time, long tests

It showed the suite's `xdist_group`s split across workers (pytest-dev/pytest-xdist#1386: a grouped
test's node id ends in `@group` only when xdist keeps the group), and which long tests end a run late.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import pytest

DEFAULT = Path(__file__).resolve().parents[1] / "outputs" / "suite_timeline.jsonl"


def _write(event: str, nodeid: str) -> None:
    path = Path(os.environ.get("SUITE_TIMELINE", DEFAULT))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:  # (one line per write: the workers append to the same file)
        f.write(json.dumps({"ev": event, "id": nodeid, "t": time.time(),
                            "w": os.environ.get("PYTEST_XDIST_WORKER", "main")}) + "\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    """Around each test where it runs (a worker, or pytest alone: not the xdist controller, which
    only hears of it), its setup, call and teardown."""
    _write("start", item.nodeid)
    try:
        return (yield)
    finally:
        _write("end", item.nodeid)


def spans(lines: list[dict]) -> dict[str, list[tuple[float, float, str]]]:
    """Per worker, each test's (start, end, node id), in seconds from the first start."""
    t0 = min(line["t"] for line in lines)
    started, out = {}, defaultdict(list)
    for line in lines:
        key = (line["w"], line["id"])
        if line["ev"] == "start":
            started[key] = line["t"] - t0
        elif key in started:
            out[line["w"]].append((started.pop(key), line["t"] - t0, line["id"]))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite_timeline", description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--over", type=float, default=25.0, help="list the tests longer than this (s)")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        parser.error(f"no timeline at {args.file}: record one with "
                     f"`SUITE_TIMELINE={args.file} python -m pytest -n 2 -p benchmarks.suite_timeline`")
    lines = [json.loads(text) for text in args.file.read_text().splitlines() if text]
    if not lines:
        parser.error(f"the timeline {args.file} is empty: its pytest session recorded no test")
    for worker, tests in sorted(spans(lines).items()):
        tests.sort()
        busy = sum(end - start for start, end, _ in tests)
        groups = sorted({nodeid.rpartition("@")[2] for *_, nodeid in tests if "@" in nodeid.rpartition("]")[2]})
        print(f"{worker}: {len(tests)} tests, busy {busy:.0f} s, last end {max(e for _, e, _ in tests):.0f} s, "
              f"groups: {', '.join(groups) or 'none'}")
        for start, end, nodeid in tests:
            if end - start > args.over:
                print(f"  {start:6.0f} {end:6.0f} {end - start:5.0f} s  {nodeid}")


if __name__ == "__main__":
    main()
