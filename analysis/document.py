"""A tiny document model rendered twice: Markdown (report.md) and self-contained HTML.

The report is assembled once as a list of blocks; both renderings come from
the same blocks, so they cannot say different things.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

# --------------------------------------------------------------------------- cell formats

Format = Callable[[Any], str]
DASH = "—"


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def num(x: Any) -> str:
    """Four significant digits, without switching to exponents between 10^-6 and 10^6."""
    if _missing(x):
        return DASH
    x = float(x)
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if -6 <= magnitude < 6:
        return f"{x:.{max(0, 3 - magnitude)}f}"
    return f"{x:.3e}"


def integer(x: Any) -> str:
    return DASH if _missing(x) else f"{int(x):,}"


def whole(x: Any) -> str:
    """A whole number without thousands separators (sizes, identifiers)."""
    return DASH if _missing(x) else str(int(x))


def pvalue(x: Any) -> str:
    if _missing(x):
        return DASH
    return "< 1e-300" if x == 0 else f"{x:.3g}"


def share(x: Any) -> str:
    """A fraction shown as a percentage."""
    return DASH if _missing(x) else f"{100 * float(x):.1f} %"


def yes_no(x: Any) -> str:
    return DASH if _missing(x) else ("yes" if bool(x) else "no")


def text(x: Any) -> str:
    return DASH if _missing(x) or x == "" else str(x)


# --------------------------------------------------------------------------- blocks


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: Sequence[str]


@dataclass
class Definitions:
    """Terms and what they mean, shown under a table or figure."""

    items: Sequence[tuple[str, str]]


@dataclass
class Table:
    frame: pd.DataFrame
    columns: Sequence[tuple[str, str, Format]]  # (column, header, format)
    caption: str = ""
    csv: str | None = None  # tables/<csv>.csv holds the full-precision frame

    def rows(self) -> list[list[str]]:
        return [
            [fmt(value) for (_, _, fmt), value in zip(self.columns, row, strict=True)]
            for row in self.frame[[c for c, _, _ in self.columns]].itertuples(index=False)
        ]


@dataclass
class Image:
    png: Path  # relative to the report folder; the SVG lies beside it
    caption: str


@dataclass
class Section:
    title: str
    blocks: list[Any] = field(default_factory=list)


# --------------------------------------------------------------------------- markdown


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(title: str, sections: Sequence[Section]) -> str:
    out = [f"# {title}", ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Para):
                out += [block.text, ""]
            elif isinstance(block, Bullets):
                out += [f"- {item}" for item in block.items] + [""]
            elif isinstance(block, Definitions):
                out += [f"- **{term}**: {meaning}" for term, meaning in block.items] + [""]
            elif isinstance(block, Table):
                if block.caption:
                    out += [f"**{block.caption}**", ""]
                headers = [h for _, h, _ in block.columns]
                out.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
                out.append("|" + "---|" * len(headers))
                for row in block.rows():
                    out.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
                if block.csv:
                    out += ["", f"Full precision: [tables/{block.csv}.csv](tables/{block.csv}.csv)"]
                out.append("")
            elif isinstance(block, Image):
                out += [f"![{block.caption}]({block.png.as_posix()})", "", f"*{block.caption}*", ""]
            else:  # pragma: no cover - a programming error
                raise TypeError(block)
    return "\n".join(out)


# --------------------------------------------------------------------------- html

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}dl{font-size:.92em}dt{font-weight:600}
dd{margin:0 0 .4em 1.5em}.csv{font-size:.8em;color:#666}
"""


def to_html(title: str, sections: Sequence[Section], root: Path) -> str:
    """Self-contained HTML: figures are embedded as base64 PNG (read from ``root``)."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for section in sections:
        out.append(f"<h2>{e(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Para):
                out.append(f"<p>{e(block.text)}</p>")
            elif isinstance(block, Bullets):
                out.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in block.items) + "</ul>")
            elif isinstance(block, Definitions):
                out.append(
                    "<dl>"
                    + "".join(f"<dt>{e(t)}</dt><dd>{e(m)}</dd>" for t, m in block.items)
                    + "</dl>"
                )
            elif isinstance(block, Table):
                out.append("<table>")
                if block.caption:
                    out.append(f"<caption>{e(block.caption)}</caption>")
                out.append(
                    "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for _, h, _ in block.columns)
                    + "</tr></thead><tbody>"
                )
                for row in block.rows():
                    out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
                out.append("</tbody></table>")
                if block.csv:
                    out.append(f'<p class="csv">Full precision: tables/{e(block.csv)}.csv</p>')
            elif isinstance(block, Image):
                data = base64.b64encode((root / block.png).read_bytes()).decode("ascii")
                out.append(
                    f'<figure><img alt="{e(block.caption)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{e(block.caption)}</figcaption></figure>"
                )
            else:  # pragma: no cover - a programming error
                raise TypeError(block)
    out.append("</body></html>")
    return "\n".join(out)
