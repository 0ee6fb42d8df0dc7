"""The package's layers point one way (docs/architecture.md): cli → runners → workers → crl / algorithms / models /
envs / data / distributed / metrics, with config beside the runners; no import cycle between modules.

Every ``import`` of a ``vlacrl`` module counts, also those inside functions (a lazy import is still a
dependency). Package ``__init__`` re-exports count as the package's imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "vlacrl"
#: top-level package → the top-level packages it must never import
FORBIDDEN = {
    **{
        low: {"cli", "runners", "workers"}
        for low in ("crl", "algorithms", "models", "envs", "data", "distributed", "metrics", "training", "config")
    },  # fmt: skip
    "workers": {"cli", "runners"},
    "runners": {"cli"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the ``vlacrl`` modules it imports (a name imported from a package counts as the submodule when
    there is one)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("vlacrl")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vlacrl"):
                subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
                targets |= subs or {node.module}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), ignoring package ``__init__`` edges
    to their own submodules (a package re-exporting what it contains is not a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def edges(v: str) -> set[str]:
        return {w for w in graph[v] if not w.startswith(v + ".")}

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_layer_imports_a_layer_above_it():
    upward = sorted(f"{m} -> {t}" for m, targets in import_graph().items() for t in targets
                    if top(t) in FORBIDDEN.get(top(m), set()))  # fmt: skip
    assert upward == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_checks_find_a_planted_violation():
    """The checks can fail: an upward import and a cycle planted in a copy of the graph are found."""
    graph = import_graph()
    graph["vlacrl.models.lora"] = graph["vlacrl.models.lora"] | {"vlacrl.runners.checkpoint"}
    graph["vlacrl.runners.checkpoint"] = graph["vlacrl.runners.checkpoint"] | {"vlacrl.models.lora"}
    assert any({"vlacrl.models.lora", "vlacrl.runners.checkpoint"} <= set(c) for c in cycles(graph))
    assert top("vlacrl.runners.checkpoint") in FORBIDDEN[top("vlacrl.models.lora")]
