"""The import graph of clara_hydra/ and hydra_plugins/, read from the code (every import, also
those inside functions): it has no circle, and every arrow points down the layers of
docs/ARCHITECTURE.md, so each module can be read, tested and changed before the ones that use it."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ("clara_hydra", "hydra_plugins")


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that ``name`` imports (``from . import x`` names module x)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
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
                out.append(sorted(component))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


#: The layers, top down (docs/ARCHITECTURE.md); a module not named is in the lowest, the Clara
#: model and values. train/names.py and train/v3_table.py are the name and v3 tables, pure data
#: that conversion reads too (no torch): they sit with conversion though they live in train/.
LAYERS = {
    4: ("clara_hydra.cli", "clara_hydra.app", "clara_hydra.__main__", "hydra_plugins"),
    3: ("clara_hydra.train", "clara_hydra.sweep", "clara_hydra.automl.controller", "clara_hydra.automl.handlers",
        "clara_hydra.automl.defs", "clara_hydra.automl.shim", "clara_hydra.export", "clara_hydra.bundle_export",
        "clara_hydra.synth", "clara_hydra.mlflow_client"),
    2: ("clara_hydra.reader", "clara_hydra.space", "clara_hydra.convert", "clara_hydra.render", "clara_hydra.resolve",
        "clara_hydra.effective", "clara_hydra.evalconf", "clara_hydra.typed", "clara_hydra.typed_source",
        "clara_hydra.argtypes", "clara_hydra.signatures", "clara_hydra.schema", "clara_hydra.automl",
        "clara_hydra.train.names", "clara_hydra.train.v3_table"),
}


def layer(module: str) -> int:
    """The layer of ``module``: the longest prefix named in LAYERS decides."""
    best, found = "", 1
    for n, names in LAYERS.items():
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, found = name, n
    return found


def test_every_import_points_down_the_layers():
    up = [f"{m} (layer {layer(m)}) imports {d} (layer {layer(d)})"
          for m, deps in sorted(graph().items()) for d in sorted(deps) if layer(d) > layer(m)]
    assert not up, "imports up the layers: " + "; ".join(up)


def test_the_reader_finds_the_imports_it_must():
    edges = graph()
    assert "clara_hydra.reader" in edges["clara_hydra.space"]  # from .reader import RESERVED_TOP
    assert "clara_hydra.train.dist" in edges["clara_hydra.train.run"]  # from . import dist (in a function)
    assert "clara_hydra.sweep.upstream" in edges["hydra_plugins.clara_hydra_sweeper._impl"]


def test_a_circle_is_found():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    found = circles(graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)
