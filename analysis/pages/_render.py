"""Rendering of a report's parts into Markdown and self-contained HTML (no network, no scripts)."""
from __future__ import annotations

import base64
import html
from typing import Any, Sequence

import pandas as pd

from ..numbers.formatting import ci, count, num, percent, pvalue  # noqa: F401  (the pages write R.num, R.ci)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1180px;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.55em;margin-bottom:.3em}h2{font-size:1.22em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.8em;margin:.6em 0;max-width:100%;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.18em .4em;text-align:right}td{white-space:nowrap}th{background:#f3f3f3;white-space:normal}
td:first-child,th:first-child{text-align:left}
ul.summary{font-size:1.02em;padding-left:1.2em}ul.summary li{margin:.35em 0}
figure{margin:1em 0}figure img{width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.88em;color:#444}code{background:#f5f5f5;padding:0 .2em}.note{color:#555;font-size:.9em}
td.v-helps{background:#dbe9f6}td.v-hurts{background:#f8dcd6}td.v-withheld{background:#f4ecd0}
ul.answer{font-size:1.08em;padding-left:1.2em;margin:.3em 0 .5em}ul.answer li{margin:.2em 0}
p.exploratory{background:#fff3cd;border-left:4px solid #b8860b;padding:.3em .6em;margin:.3em 0;font-weight:600}
figure.lead{margin:.4em 0}figure.lead img{max-height:62vh;width:auto;max-width:100%}
"""

Block = tuple  # (heading, note, content): content is a DataFrame, ("figure", name, caption),
#                ("list", [sentences]), ("defs", [(term, definition)]) or the first screen,
#                ("lead", [sentences], figure name or None, caption); an empty heading draws none
EXPLORATORY = "Exploratory:"   # a first-screen line that starts so is set apart (analysis.pages.first_screen)


def md_table(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "/") for v in row) + " |")
    return "\n".join(lines)


def html_table(frame: pd.DataFrame) -> str:
    """An HTML table; a cell of a column named 'verdict' gets the class v-<verdict> (its shade)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    cols = list(frame.columns)

    def td(col: str, v: Any) -> str:
        cls = f" class='v-{str(v).split()[0].rstrip(',')}'" if col == "verdict" and str(v) else ""
        return f"<td{cls}>{html.escape(str(v))}</td>"

    body = "".join("<tr>" + "".join(td(c, v) for c, v in zip(cols, row)) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_markdown(title: str, blocks: Sequence[Block]) -> str:
    """The page as Markdown: a heading per block, then its note and content."""
    out = [f"# {title}"]
    for heading, note, content in blocks:
        out += ["", f"## {heading}", ""] if heading else [""]
        if note:
            out += [note, ""]
        if isinstance(content, pd.DataFrame):
            out.append(md_table(content))
        elif content[0] == "lead":
            _, lines, name, caption = content
            out += [f"**{s}**\n" if s.startswith(EXPLORATORY) else f"- {s}" for s in lines]
            if name:
                out += ["", f"![{caption}](figures/{name}.png)", "", f"*{caption}*"]
        elif content[0] == "list":
            out += [f"- {s}" for s in content[1]]
        elif content[0] == "defs":
            out += [f"- **{k}**: {v}" for k, v in content[1]]
        else:
            _, name, caption = content
            out += [f"![{caption}](figures/{name}.png)", "", f"*{caption}*"]
    return "\n".join(out) + "\n"


def render_html(title: str, blocks: Sequence[Block], pngs: dict[str, bytes]) -> str:
    """The page as one self-contained HTML file (figures inlined as data URIs)."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>",
             f"<style>{CSS}</style></head><body><h1>{e(title)}</h1>"]
    for heading, note, content in blocks:
        if heading:
            parts.append(f"<h2>{e(heading)}</h2>")
        if note:
            parts.append(f"<p class='note'>{e(note)}</p>")
        if isinstance(content, pd.DataFrame):
            parts.append(html_table(content))
        elif content[0] == "lead":
            _, lines, name, caption = content
            flags = [s for s in lines if s.startswith(EXPLORATORY)]
            parts += ["<div class='lead'>", *[f"<p class='exploratory'>{e(s)}</p>" for s in flags],
                      "<ul class='answer'>", *[f"<li>{e(s)}</li>" for s in lines if s not in flags], "</ul>"]
            if name:
                parts.append(_figure(name, caption, pngs, "lead"))
            parts.append("</div>")
        elif content[0] == "list":
            cls = " class='summary'" if heading == "Summary" else ""
            parts += [f"<ul{cls}>", *[f"<li>{e(s)}</li>" for s in content[1]], "</ul>"]
        elif content[0] == "defs":
            parts += ["<dl>", *[f"<dt><b>{e(k)}</b></dt><dd>{e(v)}</dd>" for k, v in content[1]], "</dl>"]
        else:
            _, name, caption = content
            parts.append(_figure(name, caption, pngs))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _figure(name: str, caption: str, pngs: dict[str, bytes], cls: str = "") -> str:
    e = html.escape
    attr = f" class='{cls}'" if cls else ""
    return (f"<figure{attr}><img src='{data_uri(pngs[name])}' "
            f"alt='{e(caption)}'><figcaption>{e(caption)} (<code>figures/{e(name)}.png</code>)</figcaption></figure>")
