"""The package's shape: no import cycle between its modules, and helper processes that start
light."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "ragidx"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports a module runs when it is imported: not those in functions or classes, nor
    those under `if TYPE_CHECKING:`; those in other `if`, `try` and `with` blocks count."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _type_checking(node.test):
                yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _top_level(block)
            for handler in node.handlers:
                yield from _top_level(handler.body)
        elif isinstance(node, ast.With):
            yield from _top_level(node.body)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]
) -> list[str]:
    """The modules `node` imports: `from x import y` is `x.y` where that is a module of
    `known`, else `x` (a name that `x` defines)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: resolved against the module's package
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1])
        source = f"{base}.{node.module}" if node.module else base
    else:
        source = node.module or ""
    subs = [f"{source}.{alias.name}" for alias in node.names]
    return [sub if sub in known else source for sub in subs]


def _every_import(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def import_graph(*, lazy: bool = False) -> dict[str, set[str]]:
    """Each module of the package, and the modules of the package it imports at its top
    level; with `lazy`, also those it imports in functions or only for the type checker.

    A module's parent packages run first when it is imported, but they are not edges: a
    package's `__init__` that imports its own modules would otherwise be a cycle with each
    of them."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets: set[str] = set()
        for node in _every_import(tree) if lazy else _top_level(tree.body):
            targets.update(_imported(module, path.name == "__init__.py", node, set(files)))
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as the modules along it, or None if it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = _cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_stage_package_has_a_cycle_even_through_lazy_imports() -> None:
    """Within a stage (walk, read, ...), a module imported late, in a function, still may
    not import back: the stage reads top down."""
    graph = import_graph(lazy=True)
    for package in sorted({m.rsplit(".", 1)[0] for m in graph if m.count(".") >= 2}):
        inside = {m: {t for t in graph[m] if t.startswith(package + ".")} for m in graph}
        inside = {m: t for m, t in inside.items() if m.startswith(package + ".")}
        cycle = _cycle(inside)
        assert cycle is None, f"import cycle in {package}: " + " -> ".join(cycle or [])


# What a stage may not import, even late or for the type checker: the data flows one way,
# and report/ renders events and plain values, not the store's rows.
FORBIDDEN = {
    "ragidx.walk": (
        "ragidx.read",
        "ragidx.chunk",
        "ragidx.embed",
        "ragidx.store",
        "ragidx.pipeline",
    ),
    "ragidx.read": (
        "ragidx.walk",
        "ragidx.chunk",
        "ragidx.embed",
        "ragidx.store",
        "ragidx.pipeline",
    ),
    "ragidx.report": ("ragidx.store", "ragidx.embed", "ragidx.pipeline"),
}


def test_stages_import_only_what_comes_before_them() -> None:
    graph = import_graph(lazy=True)
    leaks = [
        f"{module} imports {target}"
        for package, banned in FORBIDDEN.items()
        for module, targets in graph.items()
        if module == package or module.startswith(package + ".")
        for target in sorted(targets)
        if target.startswith(banned)
    ]
    assert not leaks, leaks


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_reads_what_a_module_runs() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import ragidx.x\n"
        "from ragidx.y import z\n"
        "from . import w\n"
        "if TYPE_CHECKING:\n    import ragidx.hidden\n"
        "try:\n    import ragidx.tried\nexcept ImportError:\n    pass\n"
        "def f():\n    import ragidx.late\n"
    )
    found: set[str] = set()
    for node in _top_level(ast.parse(source).body):
        found.update(_imported("ragidx.walk.m", False, node, {"ragidx.walk.w"}))
    assert {"ragidx.x", "ragidx.y", "ragidx.walk.w"} <= found
    assert "ragidx.walk" not in found
    assert {"ragidx.hidden", "ragidx.late"}.isdisjoint(found)
    assert "ragidx.tried" in found


def test_a_walk_helper_starts_without_the_store_or_the_embedders() -> None:
    """What a helper process imports as it boots (`_BOOT`) is what each helper pays for at
    start, on every large walk: the walk's modules, not the rest of ragidx."""
    from ragidx.walk.pool import _BOOT

    (boot,) = [line for line in _BOOT.splitlines() if line.startswith("from ragidx")]
    script = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n{boot}\nprint(*sys.modules)\n"
    loaded = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = [
        m
        for m in loaded
        if m.startswith(("ragidx.store", "ragidx.embed", "ragidx.pipeline", "ragidx.read"))
        or m in {"asyncio", "sqlite3", "httpx", "numpy", "rich", "typer"}
    ]
    assert not heavy, f"a walk helper loads {heavy}"
    assert "ragidx.walk.walker" in loaded
