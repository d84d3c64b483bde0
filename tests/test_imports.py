"""The module-level import graph of voice_companion has no circle.

Read from the source with ``ast`` (nothing is imported): an edge for every import a module
runs when it is loaded, at top level, in an ``if`` (``if TYPE_CHECKING:`` included), ``try``,
``with`` or class body. An import inside a function is lazy and is left out: that is the
accepted way for a command to load a heavy part only when it runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

PACKAGE = "voice_companion"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name → file, for every module of the package."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _load_time_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue  # lazy: runs when called, not when loaded
        else:
            for name in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, name, None)
                if isinstance(children, list):
                    stmts = [c for c in children if isinstance(c, ast.stmt)]
                    # except handlers and match cases hold their statements one level down
                    stmts += [s for c in children if not isinstance(c, ast.stmt) for s in c.body]
                    yield from _load_time_imports(stmts)


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module of ours that ``name`` loads (a name imported from a module is that module)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _load_time_imports(tree.body):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                found = _resolve(target, modules)
                if found is not None and found != name:
                    graph[name].add(found)
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One circle for each strongly connected group of modules (Tarjan), shortest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted((_circle_in(graph, group) for group in groups), key=len)


def _circle_in(graph: Mapping[str, set[str]], group: set[str]) -> list[str]:
    """The shortest circle through the group's first module (breadth-first)."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no circle in {sorted(group)}")  # Tarjan said there was one


def test_the_import_graph_has_no_circle() -> None:
    graph = import_graph(module_files())
    found = cycles(graph)
    assert not found, "module-level import circle(s):\n" + "\n".join(
        " -> ".join(circle) for circle in found
    )


def test_config_validation_imports_nothing_of_the_domain() -> None:
    """config.py is read by everything: it may use errors.py and private.py, nothing else."""
    graph = import_graph(module_files())
    assert graph[f"{PACKAGE}.config"] <= {f"{PACKAGE}.errors", f"{PACKAGE}.private"}
    lazy = {
        found
        for node in ast.walk(ast.parse((ROOT / "config.py").read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module
        if (found := _resolve(node.module, module_files())) is not None
    }
    assert lazy <= {f"{PACKAGE}.errors", f"{PACKAGE}.private"}, "config.py reaches into " + str(
        sorted(lazy)
    )


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (  # a circle through a TYPE_CHECKING block and a from-import of a submodule
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg.b import B\n",
                "pkg/b.py": "from pkg import c\n",
                "pkg/c.py": "import pkg.a\n",
            },
            [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]],
        ),
        (  # an import inside a function is lazy; a relative import resolves
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "from .b import thing\n",
                "pkg/b.py": "def f():\n    from pkg.a import x\n",
            },
            [],
        ),
        (  # try/except and class bodies run at load time
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "try:\n    import pkg.b\nexcept ImportError:\n    pass\n",
                "pkg/b.py": "class K:\n    from pkg.a import x\n",
            },
            [["pkg.a", "pkg.b", "pkg.a"]],
        ),
    ],
)
def test_the_checker_finds_a_circle_when_there_is_one(
    tmp_path: Path, sources: dict[str, str], expected: list[list[str]]
) -> None:
    for relative, text in sources.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert cycles(import_graph(module_files(tmp_path / "pkg"))) == expected
