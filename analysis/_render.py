"""Rendering of a report's parts into Markdown and self-contained HTML (no network, no scripts)."""
from __future__ import annotations

import base64
import html
import math
from typing import Any, Sequence

import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.2em .45em;text-align:right;white-space:nowrap}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.findings li{margin:.3em 0}figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.88em;color:#444}code{background:#f5f5f5;padding:0 .2em}.note{color:#555;font-size:.9em}
"""


def num(v: Any, digits: int = 3) -> str:
    """A number for a table cell; '-' for missing, 'inf' for infinite."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-" if v is None else str(v)
    if math.isnan(f):
        return "-"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f"{f:.{digits}f}"


def count(v: Any) -> str:
    """An integer count; '-' for missing, 'inf' for infinite."""
    return num(v, 0)


def ci(mean: Any, low: Any, high: Any, digits: int = 3) -> str:
    """'0.034 [0.027, 0.041]'."""
    return f"{num(mean, digits)} [{num(low, digits)}, {num(high, digits)}]"


def pvalue(p: Any) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def md_table(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "/") for v in row) + " |")
    return "\n".join(lines)


def html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_markdown(title: str, findings: Sequence[str], design: Sequence[tuple[str, str]],
                    sections: Sequence[tuple[str, str, Any]]) -> str:
    """sections: (heading, note, content) where content is a DataFrame or ('figure', name, caption)."""
    out = [f"# {title}", "", "## Findings", ""]
    out += [f"- {s}" for s in findings]
    out += ["", "## Design", ""]
    out += [f"- **{k}**: {v}" for k, v in design]
    for heading, note, content in sections:
        out += ["", f"## {heading}", ""]
        if note:
            out += [note, ""]
        if isinstance(content, pd.DataFrame):
            out.append(md_table(content))
        else:
            _, name, caption = content
            out += [f"![{caption}](figures/{name}.png)", "", f"*{caption}*"]
    return "\n".join(out) + "\n"


def render_html(title: str, findings: Sequence[str], design: Sequence[tuple[str, str]],
                sections: Sequence[tuple[str, str, Any]], pngs: dict[str, bytes]) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>",
             f"<style>{CSS}</style></head><body><h1>{e(title)}</h1>",
             "<h2>Findings</h2><ul class='findings'>", *[f"<li>{e(s)}</li>" for s in findings], "</ul>",
             "<h2>Design</h2><dl>", *[f"<dt><b>{e(k)}</b></dt><dd>{e(v)}</dd>" for k, v in design], "</dl>"]
    for heading, note, content in sections:
        parts.append(f"<h2>{e(heading)}</h2>")
        if note:
            parts.append(f"<p class='note'>{e(note)}</p>")
        if isinstance(content, pd.DataFrame):
            parts.append(html_table(content))
        else:
            _, name, caption = content
            parts.append(f"<figure><img src='{data_uri(pngs[name])}' alt='{e(caption)}'>"
                         f"<figcaption>{e(caption)} (<code>figures/{e(name)}.png</code>)</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
