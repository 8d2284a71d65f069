"""Every file a comment, docstring or YAML of the project names exists: a moved module leaves no
pointer to where it used to be."""

import re

from tests.conftest import ROOT

NAMED = re.compile(r"\b(?:colorize|conf|sweeps|benchmarks|docs|tests)/[\w./-]+\.(?:py|yaml|sh|md|csv|png)\b")
SOURCES = [p for folder in ("colorize", "conf", "sweeps", "benchmarks", ".ci")
           for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".yaml", ".sh", "") and p.is_file()]


def test_every_path_the_sources_name_exists():
    named = {(src.relative_to(ROOT).as_posix(), path) for src in SOURCES for path in NAMED.findall(src.read_text())}
    assert len(named) > 20  # the pattern finds the project's own references
    missing = sorted((src, path) for src, path in named if not (ROOT / path).exists())
    assert missing == [], missing


def test_the_pattern_catches_a_stale_reference(tmp_path):
    stale = "# the schedules live in colorize/schedules.py (cosine, linear)"
    assert NAMED.findall(stale) == ["colorize/schedules.py"] and not (ROOT / "colorize/schedules.py").exists()
