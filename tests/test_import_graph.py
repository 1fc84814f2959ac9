"""The packages import downward only and never in a circle (module-level imports, read with `ast`)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("prefixlm_attn", "bench", "profiles", "plots")
LAYER = {"prefixlm_attn": 0, "bench": 1, "profiles": 2, "plots": 3, "cli": 4, "cli_options": 4}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    found["cli"] = ROOT / "cli.py"
    found["cli_options"] = ROOT / "cli_options.py"
    return found


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, known: set[str], module_level: bool) -> set[str]:
    """Project modules `path` imports (its package's own names resolved to modules)."""
    tree = ast.parse(path.read_text())
    nodes: list[ast.AST] = []
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if _type_checking_block(node):
            continue                              # annotations only: no import at run time
        nodes.append(node)
        if isinstance(node, (ast.If, ast.Try, ast.With)) or not module_level:
            todo.extend(ast.iter_child_nodes(node))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n for n in names if n in known}
    return out


def graph(module_level: bool = True) -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, set(mods), module_level) - {name} for name, path in mods.items()}


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


def test_no_import_cycle():
    cycle = find_cycle(graph(module_level=True))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_sees_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_upward_import():
    """prefixlm_attn < bench < profiles < plots < cli, counting imports inside functions too."""
    upward = [f"{m} imports {t}" for m, targets in graph(module_level=False).items() for t in targets
              if LAYER[t.split(".")[0]] > LAYER[m.split(".")[0]]]
    assert upward == []
