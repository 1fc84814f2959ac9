"""One report, two renderings: a list of blocks becomes Markdown (figures linked) or self-contained HTML.

Blocks are tuples so report content is written once:
("h", level, text) | ("p", text[, css class]) | ("ul", [text]) | ("table", headers, rows[, css class]) |
("img", title, png, svg) | ("warn", text): a warning a reader must not miss.
"""
from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

Block = tuple[Any, ...]


def fmt_num(value: Any, spec: str = ".4g") -> str:
    """A number for a table cell, "-" when missing; here (not in report.py) so `compare` needs no matplotlib."""
    return "-" if value is None else format(value, spec)


CSS = """body{font-family:system-ui,sans-serif;max-width:1340px;margin:0.6em auto;padding:0 1em;color:#222}
h1{font-size:1.35em;margin:0.2em 0}p.title{margin:0.2em 0 0.5em;color:#555;font-size:0.85em}
table.compact{font-size:0.8em;margin:0.3em 0 0.5em}table.compact td,table.compact th{padding:1px 6px}
ul.verdict{font-size:0.85em;margin:0.3em 0;padding-left:1.3em}ul.verdict li{margin:0.1em 0}
p.small{font-size:0.78em;color:#444;margin:0.3em 0}
.warn{background:#fff3cd;border:1px solid #e0a800;padding:4px 8px;margin:0.3em 0;font-size:0.85em}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%;border:1px solid #eee}
h2{border-bottom:1px solid #ddd;padding-bottom:0.2em}"""


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block], base_dir: Path) -> str:
    """Markdown with images linked relative to base_dir (where report.md lives)."""
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            lines += ["#" * block[1] + " " + block[2], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "warn":
            lines += [f"> **Warning:** {block[1]}", ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            headers, rows = block[1], block[2]
            lines.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            lines.append("|" + "|".join(" --- " for _ in headers) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            lines.append("")
        elif kind == "img":
            title, png, svg = block[1], Path(block[2]), Path(block[3])
            rel_png, rel_svg = os.path.relpath(png, base_dir), os.path.relpath(svg, base_dir)
            lines += [f"![{title}]({rel_png})", "", f"[{title} (SVG)]({rel_svg})", ""]
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    return "\n".join(lines).rstrip() + "\n"


def _is_number(value: Any) -> bool:
    if isinstance(value, (int, float)):
        return True
    try:
        float(str(value).split(" ")[0])
        return True
    except ValueError:
        return False


def _cls(block: Block, index: int) -> str:
    """` class='x'` when the block carries a CSS class at `index`."""
    return f" class='{html.escape(block[index])}'" if len(block) > index and block[index] else ""


def to_html(blocks: list[Block], title: str) -> str:
    """A single file: styles inline and every figure embedded as a base64 PNG."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             f"<style>{CSS}</style></head><body>"]
    for block in blocks:
        kind = block[0]
        if kind == "h":
            parts.append(f"<h{block[1]}>{esc(block[2])}</h{block[1]}>")
        elif kind == "p":
            parts.append(f"<p{_cls(block, 2)}>{esc(block[1])}</p>")
        elif kind == "warn":
            parts.append(f"<div class='warn'><b>Warning:</b> {esc(block[1])}</div>")
        elif kind == "ul":
            parts.append(f"<ul{_cls(block, 2)}>" + "".join(f"<li>{esc(str(i))}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{esc(str(h))}</th>" for h in block[1])
            body = "".join("<tr>" + "".join(
                f"<td class='num'>{esc(str(c))}</td>" if _is_number(c) else f"<td>{esc(str(c))}</td>"
                for c in row) + "</tr>" for row in block[2])
            parts.append(f"<table{_cls(block, 3)}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(Path(block[2]).read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{esc(block[1])}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{esc(block[1])}</figcaption></figure>")
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
