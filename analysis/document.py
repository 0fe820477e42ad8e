"""A tiny document model rendered twice: Markdown (report.md) and self-contained HTML.

The report is assembled once as a list of blocks; both renderings come from
the same blocks, so they cannot say different things.
"""

from __future__ import annotations

import base64
import functools
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


def text(x: Any) -> str:
    return DASH if _missing(x) or x == "" else str(x)


# --------------------------------------------------------------------------- blocks


@dataclass
class Para:
    text: str
    strong: str = ""  # a bold lead-in, before the text
    css: str = ""  # the paragraph's class in HTML (e.g. "note")


@dataclass
class Bullets:
    items: Sequence[str]


@dataclass
class Definitions:
    """Terms and what they mean, shown under a table or figure."""

    items: Sequence[tuple[str, str]]


@dataclass
class Heading:
    """A heading inside a section (one level below the section's title)."""

    text: str


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
class Cell:
    """One cell of a :class:`Grid`: its text, right-aligned when numeric, a link with href."""

    text: str
    numeric: bool = False
    href: str | None = None


@dataclass
class Grid:
    """A table of cells already formatted, with a class per row (e.g. a regression's colour).

    Where :class:`Table` formats a frame column by column, a page that marks rows,
    aligns numbers or links cells (the trend dashboard) builds the cells itself.
    Without headers the table has no header row.
    """

    headers: Sequence[str]
    rows: Sequence[tuple[str, Sequence[Cell]]]  # (the row's class or "", its cells)
    caption: str = ""
    css: str = ""  # the table's class in HTML


@dataclass
class Image:
    png: Path  # relative to the report folder; the SVG lies beside it
    caption: str


@dataclass
class Svg:
    """A figure as inline SVG markup (a page with no image files), its anchor and caption."""

    svg: str
    caption: str
    anchor: str = ""


@dataclass
class Section:
    title: str  # "": blocks shown before the first section's title
    blocks: list[Any] = field(default_factory=list)


# --------------------------------------------------------------------------- markdown


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_md_cell(c) for c in cells) + " |"


def _md_para(block: Para) -> list[str]:
    return [(f"**{block.strong}**" if block.strong else "") + block.text, ""]


def _md_bullets(block: Bullets) -> list[str]:
    return [f"- {item}" for item in block.items] + [""]


def _md_definitions(block: Definitions) -> list[str]:
    return [f"- **{term}**: {meaning}" for term, meaning in block.items] + [""]


def _md_heading(block: Heading) -> list[str]:
    return [f"### {block.text}", ""]


def _md_table(block: Table) -> list[str]:
    out = [f"**{block.caption}**", ""] if block.caption else []
    headers = [h for _, h, _ in block.columns]
    out += [_md_row(headers), "|" + "---|" * len(headers)]
    out += [_md_row(row) for row in block.rows()]
    if block.csv:
        out += ["", f"Full precision: [tables/{block.csv}.csv](tables/{block.csv}.csv)"]
    return [*out, ""]


def _md_grid(block: Grid) -> list[str]:
    out = [f"**{block.caption}**", ""] if block.caption else []
    width = len(block.headers) or max((len(cells) for _, cells in block.rows), default=0)
    out += [_md_row(block.headers or [""] * width), "|" + "---|" * width]
    out += [_md_row([f"[{c.text}]({c.href})" if c.href else c.text for c in cells])
            for _, cells in block.rows]
    return [*out, ""]


def _md_image(block: Image) -> list[str]:
    return [f"![{block.caption}]({block.png.as_posix()})", "", f"*{block.caption}*", ""]


def _md_svg(block: Svg) -> list[str]:
    return [f"*{block.caption}* (figure in the HTML page)", ""]


_MARKDOWN: dict[type, Callable[[Any], list[str]]] = {
    Para: _md_para, Bullets: _md_bullets, Definitions: _md_definitions, Heading: _md_heading,
    Table: _md_table, Grid: _md_grid, Image: _md_image, Svg: _md_svg,
}


_Renderers = dict[type, Callable[..., list[str]]]


def _render(renderers: _Renderers, block: Any) -> Callable[..., list[str]]:
    """The renderer of ``block``, bound to it; a TypeError for what is not a block."""
    try:
        return functools.partial(renderers[type(block)], block)
    except KeyError:
        raise TypeError(block) from None


def to_markdown(title: str, sections: Sequence[Section]) -> str:
    out = [f"# {title}", ""]
    for section in sections:
        if section.title:
            out += [f"## {section.title}", ""]
        for block in section.blocks:
            out += _render(_MARKDOWN, block)()
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

_e = html.escape


def _class(css: str) -> str:
    return f' class="{_e(css)}"' if css else ""


def _html_para(block: Para, root: Path) -> list[str]:
    strong = f"<strong>{_e(block.strong)}</strong>" if block.strong else ""
    return [f"<p{_class(block.css)}>{strong}{_e(block.text)}</p>"]


def _html_bullets(block: Bullets, root: Path) -> list[str]:
    return ["<ul>" + "".join(f"<li>{_e(i)}</li>" for i in block.items) + "</ul>"]


def _html_definitions(block: Definitions, root: Path) -> list[str]:
    return ["<dl>" + "".join(f"<dt>{_e(t)}</dt><dd>{_e(m)}</dd>" for t, m in block.items)
            + "</dl>"]


def _html_heading(block: Heading, root: Path) -> list[str]:
    return [f"<h3>{_e(block.text)}</h3>"]


def _html_table(block: Table, root: Path) -> list[str]:
    out = ["<table>"]
    if block.caption:
        out.append(f"<caption>{_e(block.caption)}</caption>")
    out.append(
        "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for _, h, _ in block.columns)
        + "</tr></thead><tbody>"
    )
    for row in block.rows():
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    if block.csv:
        out.append(f'<p class="csv">Full precision: tables/{_e(block.csv)}.csv</p>')
    return out


def _html_cell(cell: Cell) -> str:
    text = _e(cell.text)
    if cell.href is not None:
        text = f'<a href="{_e(cell.href)}">{text}</a>'
    return f'<td class="n">{text}</td>' if cell.numeric else f"<td>{text}</td>"


def _html_grid(block: Grid, root: Path) -> list[str]:
    out = [f"<table{_class(block.css)}>"]
    if block.caption:
        out.append(f"<caption>{_e(block.caption)}</caption>")
    if block.headers:
        out.append("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in block.headers)
                   + "</tr></thead>")
    out.append("<tbody>")
    out += [f"<tr{_class(css)}>" + "".join(_html_cell(c) for c in cells) + "</tr>"
            for css, cells in block.rows]
    out.append("</tbody></table>")
    return ["".join(out)]


def _html_image(block: Image, root: Path) -> list[str]:
    data = base64.b64encode((root / block.png).read_bytes()).decode("ascii")
    return [
        f'<figure><img alt="{_e(block.caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_e(block.caption)}</figcaption></figure>"
    ]


def _html_svg(block: Svg, root: Path) -> list[str]:
    anchor = f' id="{_e(block.anchor)}"' if block.anchor else ""
    return [f"<figure{anchor}>{block.svg}<figcaption>{_e(block.caption)}</figcaption></figure>"]


_HTML: dict[type, Callable[[Any, Path], list[str]]] = {
    Para: _html_para, Bullets: _html_bullets, Definitions: _html_definitions,
    Heading: _html_heading, Table: _html_table, Grid: _html_grid, Image: _html_image,
    Svg: _html_svg,
}


def to_html(title: str, sections: Sequence[Section], root: Path, *, css: str = _CSS,
            viewport: bool = False) -> str:
    """Self-contained HTML: figures are embedded as base64 PNG (read from ``root``) or
    inline SVG. ``css`` is the page's style sheet; ``viewport`` adds the mobile viewport
    tag."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        *(['<meta name="viewport" content="width=device-width, initial-scale=1">']
          if viewport else []),
        f"<title>{_e(title)}</title><style>{css}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    for section in sections:
        if section.title:
            out.append(f"<h2>{_e(section.title)}</h2>")
        for block in section.blocks:
            out += _render(_HTML, block)(root)
    out.append("</body></html>")
    return "\n".join(out)
