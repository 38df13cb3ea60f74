"""Imports run one way: no cycle among the harness's modules (imports inside functions included), and
each part imports only the parts below it (README: Architecture).

The graph is read from the source with `ast`, so an import hidden in a function body counts like one
at the top of a module. Importing `a.b.c` also runs `a` and `a.b`, so those are edges too. The one
exemption is a package's PEP 562 `__getattr__` (`bench.Unlearning` loaded on first use): it runs on
attribute access, never on import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "methods", "metrics", "attacks", "benchperf")

# Each part may import its own modules and the parts with a lower rank, never a higher one.
RANKS = {
    "bench": 0,  # the package itself: pins the CPU kernels, nothing else
    "bench.core": 0,
    "bench.training": 1,
    "methods": 2, "metrics": 2, "attacks": 2,  # the plugins; `attacks` may use the methods' losses
    "bench.data": 3,  # the generator, the sources and the split store
    "bench.config": 4,  # the suite schema: its data settings extend the generator's
    "bench.models": 5,
    "bench.run": 6,
    "bench.report": 7,
    "bench.api": 8, "bench.eval": 8, "bench.demo": 8,
    "benchperf": 9,  # the harness's own benchmark: uses the library, the library never uses it
    "bench.cli": 10,  # runs every command, `bench perf` included; nothing imports it
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def harness_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES if (ROOT / package).is_dir()
            for p in sorted((ROOT / package).rglob("*.py"))}


def _lazy_attribute_hooks(tree: ast.Module) -> set[ast.AST]:
    """Nodes inside a module-level `__getattr__` (PEP 562)."""
    return {node for fn in tree.body if isinstance(fn, ast.FunctionDef) and fn.name == "__getattr__"
            for node in ast.walk(fn)}


def imported_names(name: str, path: Path) -> set[str]:
    """Every dotted module name `name` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skipped = _lazy_attribute_hooks(tree)
    found = set()
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> nx.DiGraph:
    modules = harness_modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target in imported_names(name, path):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                prefix = ".".join(parts[:i])
                if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                    graph.add_edge(name, prefix)
    return graph


def part_of(module: str) -> str:
    """The longest RANKS key that is `module` or a package holding it."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in RANKS:
            return ".".join(parts[:i])
    raise KeyError(f"{module} belongs to no part of RANKS: add its part there (and to the README's Architecture)")


def test_every_module_belongs_to_a_ranked_part():
    for module in harness_modules():
        part_of(module)


def test_no_import_cycle_among_modules():
    cycles = [sorted(c) for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert not cycles, "import cycles (each list imports itself round the loop):\n" + "\n".join(map(str, cycles))


def test_parts_import_only_parts_below_them():
    upward = [f"{a} -> {b}" for a, b in import_graph().edges
              if part_of(a) != part_of(b) and RANKS[part_of(b)] > RANKS[part_of(a)]]
    assert not upward, "imports against the layering:\n" + "\n".join(sorted(upward))


@pytest.mark.parametrize("plugin", ["methods", "metrics", "attacks"])
def test_plugin_packages_import_only_core_training_and_plugins(plugin):
    allowed = ("bench.core", "bench.training", "methods", "metrics", "attacks")
    outside = sorted(f"{a} -> {b}" for a, b in import_graph().edges
                     if part_of(a) == plugin and b != "bench" and not b.startswith(tuple(p for p in allowed)))
    assert not outside, f"{plugin} imports above bench.core/bench.training:\n" + "\n".join(outside)


def test_a_hidden_cycle_is_found(tmp_path, monkeypatch):
    """The walk sees an import inside a function body and a relative import."""
    package = tmp_path / "bench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from bench.b import g\n")
    (package / "b.py").write_text("from .a import f\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    cycles = [c for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert cycles == [{"bench.a", "bench.b"}]
