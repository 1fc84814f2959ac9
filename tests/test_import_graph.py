"""The import graph: no circle and no import against the floor order, counting every kind of import.

Edges are read with `ast` from module-level imports, imports inside functions and classes, and
`TYPE_CHECKING` blocks alike (an annotation-only import still ties two modules together).

Floors, bottom to top: prefixlm_attn (the op) and bench.spec; bench.results; bench.harness; bench.run
and profiles (siblings); plots beside them, reading only spec and results; cli on top. The spec,
results and plots floors import no torch: they are imported here with `sys.modules["torch"] = None`.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("prefixlm_attn", "bench", "profiles", "plots")
TORCH_FREE = ("bench.spec", "bench.results", "plots")
# unit -> the units it may import (its own unit always)
ALLOWED = {
    "prefixlm_attn": set(),
    "bench.spec": set(),
    "bench.results": {"bench.spec"},
    "bench.harness": {"bench.spec", "bench.results", "prefixlm_attn"},
    "bench.run": {"bench.spec", "bench.results", "bench.harness", "profiles"},
    "profiles": {"bench.spec", "bench.results", "bench.harness", "bench.run", "prefixlm_attn"},
    "plots": {"bench.spec", "bench.results"},
    "cli": {"bench.spec", "bench.results", "bench.harness", "bench.run", "profiles", "plots", "prefixlm_attn",
            "cli"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    found["cli"] = ROOT / "cli.py"
    found["cli_options"] = ROOT / "cli_options.py"
    return found


def unit(module: str) -> str:
    """The floor a module belongs to: bench.<floor>, a top-level package, or cli (cli.py, cli_options.py)."""
    parts = module.split(".")
    if parts[0] in ("cli", "cli_options"):
        return "cli"
    if parts[0] == "bench" and len(parts) > 1:
        return f"bench.{parts[1]}"
    return parts[0]


def imported_names(path: Path) -> set[str]:
    """Every absolute module name `path` imports, wherever the import sits (functions, TYPE_CHECKING, try)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == \
                "import_module" and node.args and isinstance(node.args[0], ast.Constant):
            out.add(str(node.args[0].value))         # importlib.import_module("pkg.mod") with a literal
    return out


def graph() -> dict[str, set[str]]:
    """Project module -> project modules it imports (a name that is a package's attribute maps to the package)."""
    mods = modules()
    edges = {}
    for name, path in mods.items():
        targets = set()
        for imported in imported_names(path):
            while imported and imported not in mods:
                imported = imported.rpartition(".")[0]
            if imported:
                targets.add(imported)
        edges[name] = targets - {name}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None




def _is_package_init(module: str) -> bool:
    return modules()[module].name == "__init__.py"


def test_no_import_cycle():
    """Package __init__ files that only re-export (or import lazily) are left out: a module importing
    `pkg.sub` runs `pkg/__init__.py` first, but that is an edge into the package, not a circle of modules."""
    edges = {m: {t for t in ts if not _is_package_init(t)}
             for m, ts in graph().items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_sees_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_type_checking_and_function_level_imports_are_edges(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bench.spec.grid import Config\n"
                   "def f():\n    import bench.harness.measure\n")
    assert {"bench.spec.grid", "bench.harness.measure"} <= imported_names(src)


def test_floor_order():
    """Each floor imports only the floors below it (plots: only spec and results)."""
    wrong = [f"{m} imports {t}" for m, targets in graph().items() for t in sorted(targets)
             if unit(t) != unit(m) and unit(t) not in ALLOWED[unit(m)]]
    assert wrong == []


@pytest.mark.parametrize("floor", TORCH_FREE)
def test_torch_free_floors_name_no_torch(floor):
    """Not even inside a function: a reader of results must run where torch is not installed."""
    heavy = [f"{m} imports {n}" for m, path in modules().items() if unit(m) == floor or m.startswith(floor + ".")
             for n in sorted(imported_names(path)) if n.split(".")[0] in ("torch", "prefixlm_attn", "triton")]
    assert heavy == []


def _blocked_torch(code: str) -> subprocess.CompletedProcess:
    prelude = "import sys\nsys.modules['torch'] = None\nsys.modules['triton'] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_spec_results_and_plots_import_without_torch():
    names = sorted(m for m in modules() if unit(m) in TORCH_FREE or m.startswith("plots"))
    proc = _blocked_torch("import importlib\n" + "".join(f"importlib.import_module({n!r})\n" for n in names))
    assert proc.returncode == 0, proc.stderr


def test_help_imports_no_torch():
    proc = _blocked_torch("import runpy\nsys.argv = ['cli', '--help']\ntry:\n    runpy.run_module('cli', "
                          "run_name='__main__')\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
                          "for cmd in ('sweep', 'profile', 'validate', 'report', 'compare'):\n"
                          "    sys.argv = ['cli', cmd, '--help']\n    try:\n        runpy.run_module('cli', "
                          "run_name='__main__')\n    except SystemExit as exc:\n        assert not exc.code, exc.code\n")
    assert proc.returncode == 0, proc.stderr
    assert "--variant" in proc.stdout


def test_names_as_data_match_their_sources():
    """The torch-free lists printers and --help use are the registry's own."""
    from bench.harness.peers import PEERS
    from bench.spec.names import PEER_NAMES, PHASE_ORDER, RETIRED_VARIANTS, VARIANT_ORDER
    from cli_options import METRICS
    from plots.compare import METRICS as COMPARE_METRICS
    from prefixlm_attn.phases import ALL_PHASES
    from prefixlm_attn.variants import VARIANTS
    assert tuple(n for n in VARIANT_ORDER if n not in RETIRED_VARIANTS) == tuple(VARIANTS)
    assert PEER_NAMES == tuple(PEERS)
    assert PHASE_ORDER == ALL_PHASES
    assert METRICS == COMPARE_METRICS


FIXTURE = ROOT / "tests" / "fixtures" / "records_sample"


def test_report_and_compare_run_where_torch_cannot_be_imported(tmp_path):
    """A machine without torch reads results: `report` writes its files, `compare` gives its verdict."""
    run = ("import runpy\nsys.argv = ['cli'] + sys.argv[1:]\ntry:\n    runpy.run_module('cli', run_name='__main__')\n"
           "except SystemExit as exc:\n    code = exc.code or 0\nelse:\n    code = 0\n"
           "assert 'torch' not in [m for m, v in sys.modules.items() if v is not None], 'torch was imported'\n"
           "sys.exit(code)\n")
    prelude = "import sys\nsys.modules['torch'] = None\nsys.modules['triton'] = None\n"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", prelude + run, *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)

    report = cli("report", str(FIXTURE), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report" / "report.md").is_file() and (tmp_path / "report" / "report.html").is_file()
    compare = cli("compare", str(FIXTURE), str(FIXTURE))
    assert compare.returncode == 0, compare.stderr
    assert "same" in compare.stdout
