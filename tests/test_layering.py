"""The packages form a clean stack: workers < orchestrator < policies < system2 < benchmarks.

Every import in every module (module level or inside a function, ``TYPE_CHECKING`` included)
is read from the source, so a circle or an upward import fails here before it fails anyone.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
FLOORS = {"workers": 1, "orchestrator": 2, "policies": 3, "system2": 4, "benchmarks": 5}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for package in FLOORS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """The project modules ``name`` imports (``from package import module`` counts as
    importing the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            targets = [source, *(f"{source}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def _graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for name, path in MODULES.items():
        graph.add_edges_from((name, target) for target in _imports(name, path))
    return graph


def _floor(module: str) -> int:
    return FLOORS[module.partition(".")[0]]


def test_no_import_runs_up_a_floor() -> None:
    """No module imports a module of a higher floor."""
    upward = [f"{s} -> {t}" for s, t in _graph().edges if _floor(t) > _floor(s)]
    assert upward == []


def test_no_import_circles() -> None:
    """Module imports form no cycle. A module importing one of its parent packages is left
    out: Python runs the parent's ``__init__`` first anyway, so that edge orders nothing."""
    graph = _graph()
    graph.remove_edges_from([(s, t) for s, t in graph.edges if s.startswith(t + ".")])
    cycles = [" -> ".join([*c, c[0]]) for c in nx.simple_cycles(graph)]
    assert cycles == []


@pytest.mark.parametrize("package", sorted(FLOORS))
def test_every_package_imports_first_in_a_fresh_interpreter(package: str) -> None:
    """Each top-level package imports on its own in a new interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {package}"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_no_module_is_too_long_to_read_in_one_sitting() -> None:
    """Every module is at most about 400 lines."""
    long = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
