"""One report, two renderings: a list of blocks becomes Markdown (figures linked) or self-contained HTML.

Blocks are tuples so report content is written once:
("h", level, text) | ("p", text[, css class]) | ("ul", [text]) | ("table", headers, rows[, css class]) |
("img", title, png, svg[, caption]) | ("warn", text): a warning a reader must not miss |
("grid", [[block, ...], ...]): columns side by side in HTML (one after another in Markdown).

Wide tables scroll inside their own box, so the page fits a 1400 px window; a cell that starts with
FAILS is styled as a failure and a status word (faster / slower / same) gets its own colour.
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
h2{border-bottom:1px solid #ddd;padding-bottom:0.2em}
.scroll{overflow-x:auto;max-width:100%}.scroll table{margin-bottom:0.6em}
td{overflow-wrap:anywhere}
.grid{display:grid;grid-template-columns:minmax(0,1.05fr) minmax(0,1fr);gap:0 16px;align-items:start}
table.saving td{white-space:nowrap}
.grid table.compact th{font-weight:600}
.grid h3{font-size:0.95em;margin:0.35em 0 0.15em}.grid table.compact{margin:0.15em 0 0.25em}
.grid p{margin:0.15em 0}p.count,p.answer{font-size:0.82em;margin:0.15em 0}
p.faster{font-size:0.82em;margin:0.3em 0;background:#f4f8fb;padding:2px 6px}
td.fail{color:#b00020;font-weight:600}td.st-faster{color:#0b6e4f}td.st-slower{color:#b00020}
td.st-same{color:#555}figcaption{font-size:0.85em;color:#333;margin:0.2em 0 1em}"""


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
            lines += [f"![{title}]({rel_png})", ""]
            if len(block) > 4 and block[4]:
                lines += [f"*{block[4]}*", ""]
            lines += [f"[{title} (SVG)]({rel_svg})", ""]
        elif kind == "grid":
            for column in block[1]:
                lines.append(to_markdown(column, base_dir))
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


STATUS_WORDS = ("faster", "slower", "same")


def _td(value: Any) -> str:
    text = str(value)
    classes = []
    if _is_number(value):
        classes.append("num")
    if text.startswith("FAILS"):
        classes.append("fail")
    word = text.split(",")[0].split(" ")[-1] if text else ""
    if word in STATUS_WORDS:
        classes.append(f"st-{word}")
    cls = f" class='{' '.join(classes)}'" if classes else ""
    return f"<td{cls}>{html.escape(text)}</td>"


def to_html(blocks: list[Block], title: str) -> str:
    """A single file: styles inline and every figure embedded as a base64 PNG."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             "<meta name='viewport' content='width=device-width'>",
             f"<style>{CSS}</style></head><body>"]
    parts += _html_blocks(blocks)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_blocks(blocks: list[Block]) -> list[str]:
    esc = html.escape
    parts: list[str] = []
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
            body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in block[2])
            parts.append(f"<div class='scroll'><table{_cls(block, 3)}><thead><tr>{head}</tr></thead>"
                         f"<tbody>{body}</tbody></table></div>")
        elif kind == "img":
            data = base64.b64encode(Path(block[2]).read_bytes()).decode("ascii")
            caption = block[4] if len(block) > 4 and block[4] else block[1]
            parts.append(f"<figure><img alt='{esc(block[1])}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{esc(caption)}</figcaption></figure>")
        elif kind == "grid":
            parts.append("<div class='grid'>" + "".join(
                "<div>" + "\n".join(_html_blocks(column)) + "</div>" for column in block[1]) + "</div>")
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    return parts
