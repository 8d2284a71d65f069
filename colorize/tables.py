"""The one table writer: Markdown and CSV text from a header and rows (sweep summaries, reports,
findings, results)."""

from __future__ import annotations

import csv
import io
from typing import Iterable, Mapping, Sequence


def cell(value: object) -> str:
    """A table cell: floats at 4 decimals, anything else as text."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown (pipe) table, ending in a newline; a `|` inside a cell is escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV text, values at full precision."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def records_csv(records: Sequence[Mapping[str, object]]) -> str:
    """CSV text of dicts that share their keys (the first one's, in order); "" for none."""
    if not records:
        return ""
    header = list(records[0])
    return csv_text(header, ([r[k] for k in header] for r in records))
