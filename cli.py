"""The `prefixbench` command: each subcommand lives beside the code it drives and registers here."""
from __future__ import annotations

import importlib
import sys

import typer

from bench.errors import UserError
from prefixlm_attn.metadata import InvalidLengths

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Microbenchmarks, profiles and boundary checks for PrefixLM attention (two FA3 passes).")



@app.callback()
def _root() -> None:
    """Subcommands: variants, sweep, profile, validate, report, compare, review."""


# module -> registers its commands; an import error surfaces (a renamed module must not drop a command).
COMMAND_MODULES = (
    "prefixlm_attn.cli_variants",
    "bench.cli_sweep",
    "bench.cli_validate",
    "profiles.cli_profile",
    "plots.cli_report",
)

def _hooks() -> dict[str, dict]:
    """Extra arguments of a module's `register`: the report layer's pieces that lower layers print."""
    from plots.terminal import sweep_summary
    return {"bench.cli_sweep": {"summary": sweep_summary}}


_HOOKS = _hooks()
for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app, **_HOOKS.get(_name, {}))


@app.command()
def doctor(out: str = typer.Option("runs", "--out", help="Folder a sweep would write to (checked for write access).")) -> None:
    """Can a GPU sweep run here? One line per check: ok, or the fix. Exit 0 only if it can."""
    from pathlib import Path

    from profiles.doctor import diagnose, format_check, verdict_line
    checks, can_sweep = diagnose(Path(out))
    for check in checks:
        print(format_check(check))
    print(verdict_line(can_sweep))
    raise typer.Exit(0 if can_sweep else 1)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        app()
    except (UserError, InvalidLengths) as exc:
        print(f"prefixbench: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("prefixbench: interrupted; finished records are kept", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
