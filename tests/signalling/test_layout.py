"""signalling's modules import one another in one direction only (service -> session ->
consultation), counting imports made only for type checking."""

from __future__ import annotations

import ast
from pathlib import Path

import signalling

PACKAGE = Path(signalling.__file__).parent


def imports_within_package() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        if path.stem == "__init__":
            continue
        targets = graph.setdefault(path.stem, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    targets.add(node.module.split(".")[0])
                else:
                    targets.update(alias.name for alias in node.names)
    return graph


def test_no_import_cycle_between_signalling_modules() -> None:
    graph = imports_within_package()
    assert {"service", "session", "consultation"} <= graph.keys()

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(t == goal or (t not in seen and reaches(t, goal, seen | {t})) for t in graph.get(start, ()))

    cycles = sorted(module for module in graph if reaches(module, module))
    assert cycles == [], {m: sorted(graph[m]) for m in cycles}
    assert "service" not in graph["consultation"] and "session" not in graph["consultation"]
