"""`prefixbench variants`: the registry, for people (a table) and machines (--json)."""
from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from prefixlm_attn.variants import DEFAULT_VARIANT, VARIANTS


def variants(as_json: bool = typer.Option(False, "--json", help="Print a JSON list of objects.")) -> None:
    """List the op variants: what each allocates, zero-fills and adds, and what it survives."""
    entries = [v.summary() | {"default": v.name == DEFAULT_VARIANT} for v in VARIANTS.values()]
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    table = Table(title="prefixbench variants", show_lines=True)
    for col in ("name", "zero_fills", "adds", "fails_on", "recommended"):
        table.add_column(col)
    for e in entries:
        name = e["name"] + (" (default)" if e["default"] else "")
        table.add_row(name, e["zero_fills"], e["adds"], e["fails_on"], "yes" if e["recommended"] else "")
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("variants")(variants)
