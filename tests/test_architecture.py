"""The package's shape: every module imports on its own, no import circle, and imports only flow downwards."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

PACKAGE = REPO / "aebench"
# Lowest first: a module may import its own layer and the layers before it, never one after it. The report sits
# below the run machinery (the runner prints and writes its paired tests); the package's face (``aebench``: the
# API's functions, loaded on first use) sits on top, matched by its exact name.
FACE = "aebench"
LAYERS = [
    ("aebench.about", "aebench.errors", "aebench.files", "aebench.safe_yaml", "aebench.config"),
    ("aebench.models",),
    ("aebench.hub",),
    ("aebench.data",),
    ("aebench.training",),
    ("aebench.techniques",),
    ("aebench.evaluation",),
    ("aebench.experiment",),
    ("aebench.results",),
    ("aebench.reporting",),
    ("aebench.execution", "aebench.bench"),
    ("aebench.api",),
    ("aebench.cli", "aebench.__main__", FACE),
]
# The report reads results files and metric specs: nothing that trains.
REPORT_MAY_IMPORT = (
    "aebench.errors",
    "aebench.files",
    "aebench.safe_yaml",
    "aebench.reporting",
    "aebench.results.cost",
    "aebench.results.schema",
    "aebench.results.store",
    "aebench.results.summary",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(source: str, name: str, is_package: bool) -> set[str]:
    """The aebench modules a module's source imports (relative imports resolved), at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            candidates = [target, *(f"{target}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {c for c in candidates if c.startswith("aebench")}
    return found - {name}


def layer_of(name: str) -> int:
    """Index of the most specific layer prefix that ``name`` falls under."""
    best, length = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            below = name.startswith(prefix + ".") and prefix != FACE  # every module's name starts with the face's
            if (name == prefix or below) and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Upward imports, report imports of training code, and models importing the rest of aebench."""
    found = []
    for name, targets in graph.items():
        for target in sorted(targets):
            if layer_of(target) > layer_of(name):
                found.append(f"{name} imports {target}, a higher layer")
            if (
                name.startswith("aebench.reporting")
                and not target.startswith(REPORT_MAY_IMPORT)
                and target != "aebench"
            ):
                found.append(f"{name} imports {target}: the report reads results files and metric specs only")
            if name.startswith("aebench.models") and not target.startswith(("aebench.models", "aebench.errors")):
                found.append(f"{name} imports {target}: models/ imports nothing else of aebench")
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected sets of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
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

    for v in graph:
        if v not in index:
            visit(v)
    return found


def package_graph() -> dict[str, set[str]]:
    return {
        name: {t for t in imported(path.read_text(), name, path.name == "__init__.py") if t in MODULES}
        for name, path in MODULES.items()
    }


def test_imports_flow_one_way_with_no_circle() -> None:
    graph = package_graph()
    assert circles(graph) == []
    assert violations(graph) == []


def test_the_check_catches_an_upward_import_and_a_circle() -> None:
    graph = package_graph()
    graph["aebench.models.conv"] = graph["aebench.models.conv"] | {"aebench.training.loop"}  # models -> training
    graph["aebench.training.loop"] = graph["aebench.training.loop"] | {"aebench.reporting.stats"}  # training -> report
    graph["aebench.reporting.stats"] = graph["aebench.reporting.stats"] | {"aebench.models.conv"}  # closes a circle
    found = violations(graph)
    assert "aebench.models.conv imports aebench.training.loop, a higher layer" in found
    assert any("models/ imports nothing else" in v for v in found)
    assert "aebench.training.loop imports aebench.reporting.stats, a higher layer" in found
    assert any("aebench.reporting.stats imports aebench.models.conv: the report reads" in v for v in found)
    assert ["aebench.models.conv", "aebench.reporting.stats", "aebench.training.loop"] in circles(graph)


def test_every_module_belongs_to_a_layer() -> None:
    assert [name for name in MODULES if layer_of(name) < 0] == []


# One interpreter (a subprocess) imports each module with every aebench module first removed from sys.modules: each
# import then runs the module's whole import chain from scratch, as a fresh Python would, while third-party
# libraries stay loaded (a new interpreter per module would spend minutes re-importing torch).
FRESH_IMPORTS = """
import importlib, sys, traceback
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "aebench" or m.startswith("aebench.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException:
        print(name + ": " + traceback.format_exc().strip().splitlines()[-1], flush=True)
"""


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    """No module works only because another was imported first."""
    names = [name for name in MODULES if name != "aebench.__main__"]  # __main__ runs the CLI; the CLI tests cover it
    proc = subprocess.run([sys.executable, "-c", FRESH_IMPORTS, *names], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


@pytest.mark.parametrize("name", ["aebench.reporting.build", "aebench.reporting.stats", "aebench.reporting.figures"])
def test_the_report_loads_no_training_code(name: str) -> None:
    script = f"import sys, {name}; print(sorted(m for m in sys.modules if m.startswith(('aebench.training', 'aebench.techniques', 'aebench.models'))))"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    assert proc.stdout.strip() == "[]"
