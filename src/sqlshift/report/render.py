"""Tables and sections as data, rendered to Markdown and to one self-contained HTML file (PNGs inlined), so the
two outputs can never disagree and the HTML can be mailed on its own.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Table:
    """A table as data. ``row_classes`` only colours HTML rows."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    row_classes: list[str] = field(default_factory=list)


@dataclass
class Section:
    """A report section: paragraphs, tables and plots."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.paragraphs or self.tables or self.plots)


def table_heading(s: Section, t: Table) -> str | None:
    """A table's own heading, or None when it would only repeat its section's heading."""
    return None if t.title.strip().lower() == s.title.strip().lower() else t.title


def md_cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def table_md(t: Table, heading: str | None) -> str:
    lines = [f"### {heading}", ""] if heading else []
    lines += ["| " + " | ".join(md_cell(c) for c in t.columns) + " |", "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in t.rows]
    if t.note:
        lines += ["", f"*{t.note}*"]
    return "\n".join(lines)


def render_md(title: str, sections: list[Section], root: Path) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        out += [p + "\n" for p in s.paragraphs]
        out += [table_md(t, table_heading(s, t)) + "\n" for t in s.tables]
        out += [f"![{p.stem}]({p.relative_to(root).as_posix()})\n" for p in s.plots]
    return "\n".join(out)


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f2f2f2}
tr.total td{font-weight:600}tr.frontier td{background:#eaf6ea}tr.pick td{background:#cfeccf;font-weight:600}
tr.failure td{background:#fde3e1}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.note{color:#555;font-size:12px;margin-top:-1em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}"""


def table_html(t: Table, heading: str | None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = []
    for i, r in enumerate(t.rows):
        cls = t.row_classes[i] if i < len(t.row_classes) else ""
        attr = f' class="{cls}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>")
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    h3 = f"<h3>{html.escape(heading)}</h3>\n" if heading else ""
    return (f"{h3}<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body)
            + f"\n</tbody>\n</table>\n{note}")


def img_html(p: Path) -> str:
    """The PNG inlined as a data URI, so the HTML file stands alone."""
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,{data}"></figure>'


def render_html(title: str, sections: list[Section]) -> str:
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body>\n<h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
        parts += [table_html(t, table_heading(s, t)) for t in s.tables]
        parts += [img_html(p) for p in s.plots]
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
