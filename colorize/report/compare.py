"""Two study reports side by side, finding by finding: which verdicts a change of budget (or
device, or seeds) turned.

    colorize-report --compare docs/study/cpu-24-epochs docs/study --labels "24 epochs, CPU" "100 epochs x 3, GPU"

Each report folder holds `findings.csv` (written with every report), or, for a report made before
that file existed, the findings table of its `report.md`, which is read instead. Findings are
matched by experiment and reference conclusion; the table prints as Markdown.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from colorize.errors import ColorizeError
from colorize.report.findings import Finding
from colorize.tables import csv_text

FINDINGS_CSV = "findings.csv"
FIELDS = ["experiment", "reference", "this_run", "verdict"]


def write_findings(rows: Sequence[Finding], path: Path) -> None:
    """The findings table as CSV, for comparing reports later."""
    path.write_text(csv_text(FIELDS, ([f.experiment, f.reference, "; ".join(f.shows), f.verdict] for f in rows)))


def read_findings(folder: Path) -> list[dict]:
    """A report's findings: its findings.csv, else the Findings table of its report.md."""
    if (folder / FINDINGS_CSV).is_file():
        with (folder / FINDINGS_CSV).open(newline="") as fh:
            return list(csv.DictReader(fh))
    report = folder / "report.md"
    if not report.is_file():
        raise ColorizeError(f"{str(folder)!r} holds neither {FINDINGS_CSV} nor report.md: not a report folder")
    lines = report.read_text().splitlines()
    try:
        start = lines.index("## Findings")
    except ValueError:
        raise ColorizeError(f"{str(report)!r} has no Findings section") from None
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append(line)
        elif table:  # the first line after the table ends it
            break
    rows = []
    for line in table[2:]:  # after the header and its |---| rule
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 4:
            rows.append(dict(zip(FIELDS, cells)))
    return rows


def compare(a: Path, b: Path, labels: Sequence[str]) -> str:
    """A Markdown table: each finding's verdict in report `a` and in report `b`, and whether it moved."""
    first, second = read_findings(a), read_findings(b)
    key = lambda row: (row["experiment"], row["reference"])  # noqa: E731
    theirs = {key(r): r["verdict"] for r in second}
    keys = [key(r) for r in first] + [k for k in (key(r) for r in second) if k not in {key(r) for r in first}]
    ours = {key(r): r["verdict"] for r in first}
    out = [f"| experiment | reference study | {labels[0]} | {labels[1]} | changed |", "|---|---|---|---|---|"]
    for k in keys:
        va, vb = ours.get(k, "not run"), theirs.get(k, "not run")
        out.append(f"| {k[0]} | {k[1]} | {va} | {vb} | {'**yes**' if _decided(va) != _decided(vb) else 'no'} |")
    moved = sum(line.endswith("**yes** |") for line in out)
    return "\n".join(out) + f"\n\n{moved} of {len(keys)} verdicts changed between {labels[0]} and {labels[1]}.\n"


def _decided(verdict: str) -> str:
    """A verdict without its "(1 run)" mark: the same decision on one run or on three."""
    return verdict.split(" (")[0]
