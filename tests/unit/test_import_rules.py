"""The import rule of ARCHITECTURE.md, read from the source (every import, function-level ones too).

runner -> tasks -> tfrun.tasks.core, never back; no circles; the core imports only the standard library,
omegaconf and hydra; Hydra's private API is used in one module only (tfrun.tasks.core.hydra_adapter); runner/
keeps at most 10 top-level files; every step in tfrun.runner.steps names a function that exists.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE_MAY_IMPORT = {"omegaconf", "hydra"}
HYDRA_ADAPTER = "tfrun.tasks.core.hydra_adapter"
HYDRA_PRIVATE = (  # undocumented modules (the adapter's docstring says what of them it uses)
    "hydra._internal",
    "hydra.core.override_parser",
    "hydra.core.global_hydra",
    "hydra.core.default_element",
)


def _modules() -> dict[str, Path]:
    """Installed module name -> file: the repository's runner/ and tasks/ are tfrun.runner and tfrun.tasks."""
    found = {"tfrun": ROOT / "tfrun" / "__init__.py"}
    for top in ("runner", "tasks"):
        for path in (ROOT / top).rglob("*.py"):
            parts = ["tfrun", *path.relative_to(ROOT).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported_names(module: str, path: Path) -> list[str]:
    """Every module name an import statement in the file names, relative imports made absolute."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(kept + ([base] if base else []))
            names += [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    return names


def _project_module(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(modules: dict[str, Path] = MODULES) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name in _imported_names(module, path):
            target = _project_module(name)
            if target and target != module:
                graph[module].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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


def test_nothing_under_tasks_imports_runner():
    back = {
        m: sorted(t for t in targets if t == "tfrun" or t.startswith("tfrun.runner"))
        for m, targets in import_graph().items()
        if m.startswith("tfrun.tasks")
    }
    assert not {m: t for m, t in back.items() if t}, "tasks/ must not import runner (ARCHITECTURE.md)"


def test_no_import_circles():
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_circles():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_core_imports_only_the_standard_library_omegaconf_and_hydra():
    outside = {}
    for module, path in MODULES.items():
        if not module.startswith("tfrun.tasks.core"):
            continue
        for name in _imported_names(module, path):
            top = name.split(".")[0]
            if (
                name.startswith("tfrun.tasks.core")
                or top == "__future__"
                or top in sys.stdlib_module_names
                or top in CORE_MAY_IMPORT
            ):
                continue
            outside.setdefault(module, []).append(name)
    assert outside == {}


def test_only_the_adapter_uses_hydras_private_api():
    """Imports of Hydra's undocumented modules, and `hydra._internal` named anywhere (a `_target_`), stay in
    tfrun.tasks.core.hydra_adapter, so upgrading Hydra means re-checking one module."""
    found = {}
    for module, path in MODULES.items():
        if module == HYDRA_ADAPTER:
            continue
        private = [n for n in _imported_names(module, path) if n.startswith(HYDRA_PRIVATE)]
        if "hydra._internal" in path.read_text():
            private.append("hydra._internal (named in the text)")
        if private:
            found[module] = private
    assert found == {}, f"use {HYDRA_ADAPTER} instead: {found}"


def test_the_private_api_check_finds_an_import(tmp_path: Path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from hydra.core.global_hydra import GlobalHydra\n")
    assert [n for n in _imported_names("probe", probe) if n.startswith(HYDRA_PRIVATE)] == ["hydra.core.global_hydra"]


def test_runner_imports_not_the_python_api():
    """tfrun/__init__ (the Python API) stands above the runner: the runner never imports it back."""
    back = {m: t for m, t in import_graph().items() if m.startswith("tfrun.runner") and "tfrun" in t}
    assert back == {}


def test_runner_keeps_at_most_ten_top_level_files():
    files = sorted(p.name for p in (ROOT / "runner").iterdir() if p.is_file() and p.suffix == ".py")
    assert len(files) <= 10, files


def _top_level_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in tree.body:  # `from tasks.x import step` re-exports count when tasks.x defines it
        if isinstance(node, ast.ImportFrom) and node.module in MODULES:
            defined = _top_level_functions(MODULES[node.module])
            names |= {a.asname or a.name for a in node.names if a.name in defined}
    return names


@pytest.mark.parametrize("step", sorted(__import__("tfrun.runner.steps", fromlist=["STEPS"]).STEPS))
def test_every_step_names_a_function(step: str):
    from tfrun.runner.steps import STEPS

    module, _, function = STEPS[step].partition(":")
    assert module in MODULES, f"{step}: no module {module}"
    assert function in _top_level_functions(MODULES[module]), f"{step}: {module} defines no function {function}"
