"""A tiny report document model rendered to Markdown and to self-contained HTML."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

from colorize.tables import markdown


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


Cell = Union[str, list[str]]  # a list: items (a finding's comparisons), a list in HTML, "; "-joined in Markdown


@dataclass
class Table:
    header: list[str]
    rows: Sequence[Sequence[Cell]]


@dataclass
class Image:
    path: Path  # relative to the report folder
    caption: str


Block = Union[Heading, Paragraph, Table, Image]


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if isinstance(b, Heading):
                out += ["#" * b.level + " " + b.text, ""]
            elif isinstance(b, Paragraph):
                out += [b.text, ""]
            elif isinstance(b, Table):
                out += [markdown(b.header, ([_joined(c) for c in row] for row in b.rows))]
            elif isinstance(b, Image):
                out += [f"![{b.caption}]({b.path.as_posix()})", "", f"*{b.caption}*", ""]
        return "\n".join(out)

    def html(self, base: Path) -> str:
        """Self-contained HTML: images are embedded as base64 data URIs."""
        esc = html.escape
        out = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>{esc(self.title)}</title>",
            "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
            "color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
            "padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}td.num{text-align:right;"
            "white-space:nowrap}td ul{margin:0;padding-left:1.2em}code{background:#f3f3f3;padding:0 3px;"
            "border-radius:3px;font-size:90%}img{max-width:100%}figcaption{color:#555;font-size:90%}</style>",
            f"</head><body><h1>{esc(self.title)}</h1>",
        ]
        for b in self.blocks:
            if isinstance(b, Heading):
                out.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
            elif isinstance(b, Paragraph):
                out.append(f"<p>{_inline(b.text)}</p>")
            elif isinstance(b, Table):
                out.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in b.header) + "</tr>")
                out += ["<tr>" + "".join(_html_cell(c) for c in r) + "</tr>" for r in b.rows]
                out.append("</table>")
            elif isinstance(b, Image):
                data = base64.b64encode((base / b.path).read_bytes()).decode()
                out.append(
                    f"<figure><img alt='{esc(b.caption)}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{esc(b.caption)}</figcaption></figure>"
                )
        out.append("</body></html>")
        return "\n".join(out)


NUMBER = re.compile(r"^[\d.,%±()=n\s–—-]+$")  # a value (0.7504, 0.7504 ± 0.0012 (n=3), 4–7): right-aligned


def _joined(cell: Cell) -> str:
    return cell if isinstance(cell, str) else "; ".join(cell) or "—"


def _inline(text: str) -> str:
    """Escaped HTML with Markdown's inline code (`...`) as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _html_cell(cell: Cell) -> str:
    if not isinstance(cell, str):
        items = "".join(f"<li>{_inline(item)}</li>" for item in cell)
        return f"<td><ul>{items}</ul></td>" if cell else "<td>—</td>"
    return f"<td class='num'>{_inline(cell)}</td>" if NUMBER.match(cell) else f"<td>{_inline(cell)}</td>"
