"""The package's import graph, built from the source (every import, at module level or inside a
function), and the rules it must keep: layers that import only downwards, no cycles between
modules, and no module reaching into another module's private names.

Used by ``tests/test_layout.py``; run it directly for a report::

    python tests/import_graph.py
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The layers of ``tumorsynth``, lowest first. A module may import from its own layer's package and
#: from layers below; packages on one line (``|``) are siblings that do not import each other.
#: The root ``tumorsynth/__init__.py`` re-exports the public API and is imported by nothing inside.
LAYERS: tuple[str, ...] = (
    "errors | version",
    "kernels",
    "backend",
    "engine",
    "io | phantom",
    "stream | transforms",
    "dataset",
    "segment",
    "evaluate",
    "train",
    "bench",
    "methods",
    "cli",
)


@dataclass
class Graph:
    """Modules (dotted names) and, for each, the modules and private names it imports."""

    root: str
    modules: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)
    private: list[tuple[str, str, str]] = field(default_factory=list)  # importer, module, name


def _module_name(path: Path, base: Path, package_dirs: dict[Path, str]) -> str:
    for folder, dotted in package_dirs.items():
        if path.is_relative_to(folder):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            return ".".join([dotted, *parts])
    raise ValueError(path)


def _resolve(modules: dict[str, Path], name: str) -> str | None:
    """The module ``name`` refers to: itself, or the closest enclosing module (``a.b.f`` -> ``a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def build(package_dirs: dict[Path, str]) -> Graph:
    """The import graph of the packages in ``package_dirs`` (folder -> dotted name)."""
    root = next(iter(package_dirs.values())).split(".")[0]
    graph = Graph(root)
    for folder in package_dirs:
        for path in sorted(folder.rglob("*.py")):
            graph.modules[_module_name(path, folder, package_dirs)] = path
    for name, path in graph.modules.items():
        graph.edges[name] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [(f"{base}.{a.name}", (base, a.name)) for a in node.names]
            else:
                continue
            for target, imported in targets:
                if not target.startswith(root + ".") and target != root:
                    continue
                resolved = _resolve(graph.modules, target)
                if resolved and resolved != name:
                    graph.edges[name].add(resolved)
                if imported and _is_private(imported[1]) and target not in graph.modules:
                    graph.private.append((name, imported[0], imported[1]))
                elif _is_private_module(target, name):
                    graph.private.append(
                        (name, target.rpartition(".")[0], target.rpartition(".")[2])
                    )
    return graph


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_private_module(target: str, importer: str) -> bool:
    """A private module (``pkg._mod``) imported from outside ``pkg``."""
    parts = target.split(".")
    for k, part in enumerate(parts):
        if _is_private(part):
            owner = ".".join(parts[:k])
            return not (importer == owner or importer.startswith(owner + "."))
    return False


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _layer_of(module: str, root: str, layers: Sequence[str]) -> tuple[int, str] | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the root package's __init__
    top = parts[1]
    for level, line in enumerate(layers):
        if top in [p.strip() for p in line.split("|")]:
            return level, top
    return None


def layer_violations(graph: Graph, layers: Sequence[str] = LAYERS) -> list[str]:
    """Imports that go up a layer, across siblings, into the root package, or from a module that
    belongs to no layer."""
    problems = []
    for importer in sorted(graph.modules):
        mine = _layer_of(importer, graph.root, layers)
        if mine is None and importer != graph.root:
            problems.append(f"{importer}: in no layer (add its package to LAYERS)")
            continue
        for target in sorted(graph.edges[importer]):
            if importer == graph.root:
                continue
            theirs = _layer_of(target, graph.root, layers)
            if theirs is None:
                problems.append(f"{importer} imports the root package {target}")
            elif theirs[0] > mine[0] or (theirs[0] == mine[0] and theirs[1] != mine[1]):
                problems.append(
                    f"{importer} ({mine[1]}) imports {target} ({theirs[1]}), which is not below it"
                )
    return problems


def check(package_dirs: dict[Path, str], layers: Sequence[str] | None = LAYERS) -> list[str]:
    """Every broken rule, one line each (empty when the package keeps them all)."""
    graph = build(package_dirs)
    problems = [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    problems += [
        f"{who} imports the private name {name} of {module}" for who, module, name in graph.private
    ]
    if layers is not None:
        problems += layer_violations(graph, layers)
    return problems


def project_packages(repo: Path) -> dict[Path, str]:
    """``tumorsynth/`` and ``cli/`` (installed as ``tumorsynth.cli``)."""
    return {repo / "cli": "tumorsynth.cli", repo / "tumorsynth": "tumorsynth"}


def main(argv: Iterable[str] = ()) -> int:
    repo = Path(__file__).resolve().parents[1]
    problems = check(project_packages(repo))
    for line in problems:
        print(line)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
