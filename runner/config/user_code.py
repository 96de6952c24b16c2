"""A user's `_target_`, found and its signature read without running any of the user's code.

`tfrun` checks a config that names the user's function (``model._target_: mymodels.build``) before
anything runs, and must stay fast and free of TensorFlow doing it, so it never imports the user's
module: a module that imports TensorFlow at its top would cost seconds and start TensorFlow in the
runner. Instead:

- The module file is found with ``importlib.machinery.PathFinder`` one package level at a time
  (``mypkg`` -> ``mypkg/models.py``), which lists folders and never executes anything, not even a
  package's ``__init__.py`` (``importlib.util.find_spec("mypkg.models")`` would import ``mypkg``).
  Only a top-level name that no folder on the path holds falls back to ``importlib.util.find_spec``,
  which for a top-level name executes nothing either (it asks the import hooks, e.g. an editable
  install's finder). The search path is the one the training child has: the current directory
  first (the child runs as ``python -m``), then ``PYTHONPATH`` and the installed packages.
- The file is parsed with ``ast``; the name is looked up among its top-level definitions, following
  ``from x import name`` re-exports (``tf_keras.callbacks.CSVLogger`` is defined in
  ``tf_keras/src/callbacks.py``), a class's ``__init__`` (or a base class's, or a ``@dataclass``'s
  fields) and ``Class.method``.
- What cannot be read without running code (a name bound by assignment, a compiled module, a
  decorated function whose decorator may change the signature is read as written) is reported as
  an unknown signature: the module and name are still checked, the keys are then checked when the
  training child calls the function.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

from tfrun.tasks.core.problems import did_you_mean

MAX_DEPTH = 8  # re-exports followed before giving up (a cycle, or a very deep chain)


@dataclass(frozen=True)
class Signature:
    """The keyword parameters of a callable, as written in its source."""

    accepted: tuple[str, ...]  # parameters a keyword can fill, in order
    required: tuple[str, ...]  # of those, the ones without a default
    var_keyword: bool  # **kwargs: any key is accepted


@dataclass(frozen=True)
class Found:
    """Where a `_target_` is defined. `signature` is None when it cannot be read statically."""

    target: str
    kind: str  # "function" | "class" | "unknown"
    file: Optional[Path]
    line: Optional[int]
    signature: Optional[Signature]

    @property
    def where(self) -> str:
        if self.file is None:
            return self.target
        return f"{_show_path(self.file)}:{self.line}" if self.line else _show_path(self.file)


@dataclass(frozen=True)
class NotFound:
    """Why a `_target_` does not name a callable: the text after "expected ..." in a config problem."""

    reason: str


def search_path() -> list[str]:
    """The folders the training child imports from: the current directory first, then sys.path's."""
    cwd = os.getcwd()
    entries = [cwd, *os.environ.get("PYTHONPATH", "").split(os.pathsep), *sys.path]
    seen: list[str] = []
    for entry in entries:
        entry = os.path.abspath(entry or cwd)
        if entry not in seen:
            seen.append(entry)
    return seen


def module_spec(name: str, path: Optional[list[str]] = None) -> Optional[importlib.machinery.ModuleSpec]:
    """The spec of module `name` (dotted), found without executing any module."""
    parts = name.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    locations = search_path() if path is None else path
    spec = importlib.machinery.PathFinder.find_spec(parts[0], locations)
    if spec is None:
        try:  # import hooks (editable installs, built-in and frozen modules); executes nothing for a top-level name
            spec = importlib.util.find_spec(parts[0])
        except (ImportError, ValueError):
            spec = None
    for i in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            return None
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), list(spec.submodule_search_locations))
    return spec


def find(target: str, path: Optional[list[str]] = None) -> Union[Found, NotFound]:
    """Locate `target` ("pkg.module.function" or "pkg.module.Class") without importing it."""
    if not isinstance(target, str) or not target or not all(p.isidentifier() for p in target.split(".")):
        return NotFound("a dotted path of a function or class, e.g. mymodels.build")
    if "." not in target:
        return NotFound(
            f"module.function, a dotted path such as mymodels.build (a bare name like {target!r} names no module)"
        )
    return _find(target, search_path() if path is None else path, 0)


def _find(target: str, path: list[str], depth: int) -> Union[Found, NotFound]:
    parts = target.split(".")
    if module_spec(target, path) is not None:
        return NotFound(f"a function or class, but {target} is a module")
    for cut in range(len(parts) - 1, 0, -1):  # the longest prefix that is a module
        module = ".".join(parts[:cut])
        spec = module_spec(module, path)
        if spec is not None:
            return _in_module(target, module, spec, parts[cut:], path, depth)
    return NotFound(
        f"a function in an importable module, but no module {parts[0]!r} is on the path "
        f"({_path_text(path)}){_close_modules(parts[0], path)}"
    )


def _in_module(
    target: str, module: str, spec: importlib.machinery.ModuleSpec, names: list[str], path: list[str], depth: int
) -> Union[Found, NotFound]:
    origin = spec.origin
    if not origin or not origin.endswith(".py") or not os.path.isfile(origin):
        if spec.submodule_search_locations and not origin:  # a namespace package: names would be submodules
            return NotFound(f"a function, but {module} (a namespace package) has no module {names[0]!r}")
        return Found(target, "unknown", Path(origin) if origin and os.path.isfile(origin) else None, None, None)
    file = Path(origin)
    tree = _parse(str(file), os.path.getmtime(file))
    if tree is None:
        return NotFound(f"a function in a module Python can parse, but {_show_path(file)} has a syntax error")
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    if not hasattr(tree, "tfrun_package"):  # for its relative imports
        tree.tfrun_package = package  # type: ignore[attr-defined]
    return _lookup(target, tree, file, package, names, path, depth)


def _lookup(
    target: str, tree: ast.Module, file: Path, package: str, names: list[str], path: list[str], depth: int
) -> Union[Found, NotFound]:
    """`names[0]` among the module's definitions; `names[1]` (if any) inside that class."""
    bindings = _bindings(tree)
    binding = bindings.get(names[0])
    if binding is None and (bindings.get(STAR) or "__getattr__" in bindings):
        return _from_star(target, bindings, names, file, path, depth)
    if binding == AMBIGUOUS:
        return Found(target, "unknown", file, None, None)
    if binding is None:
        defined = sorted(
            n
            for n, b in bindings.items()  # its own functions and classes, not names it imported
            if not n.startswith("_") and isinstance(b, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        )
        return NotFound(
            f"a function defined in {_show_path(file)}, which has no {names[0]!r}{_close(names[0], defined)}"
        )
    if isinstance(binding, tuple):  # imported: follow it
        if depth >= MAX_DEPTH:
            return Found(target, "unknown", file, None, None)
        source, line = binding
        result = _find(".".join([source, *names[1:]]), path, depth + 1) if "." in source else None
        if result is None:
            found = module_spec(source, path)  # `import x` bound a module
            if found is None:
                return Found(target, "unknown", file, line, None)
            return (
                _in_module(target, source, found, names[1:], path, depth + 1)
                if names[1:]
                else NotFound(f"a function or class, but {target} is a module")
            )
        return (
            Found(target, result.kind, result.file, result.line, result.signature)
            if isinstance(result, Found)
            else result
        )
    if isinstance(binding, ast.FunctionDef | ast.AsyncFunctionDef):
        if len(names) > 1:
            return NotFound(f"a function or class, but {'.'.join(names[:-1])} in {_show_path(file)} is a function")
        return Found(target, "function", file, binding.lineno, _signature(binding.args, skip_first=False))
    if isinstance(binding, ast.ClassDef):
        if len(names) > 2:
            return Found(target, "unknown", file, binding.lineno, None)
        if len(names) == 2:
            return _method(target, binding, names[1], file)
        return Found(target, "class", file, binding.lineno, _class_signature(binding, tree, file, package, path, depth))
    return Found(target, "unknown", file, getattr(binding, "lineno", None), None)  # assigned: runtime only


def _from_star(
    target: str, bindings: dict[str, object], names: list[str], file: Path, path: list[str], depth: int
) -> Union[Found, NotFound]:
    """A name a `from x import *` (or a module __getattr__) may provide: found there, else unknown, never wrong."""
    if depth < MAX_DEPTH:
        for source in bindings.get(STAR) or []:  # type: ignore[union-attr]
            result = _find(".".join([source, *names]), path, depth + 1)
            if isinstance(result, Found):
                return Found(target, result.kind, result.file, result.line, result.signature)
    return Found(target, "unknown", file, None, None)


def _method(target: str, cls: ast.ClassDef, name: str, file: Path) -> Union[Found, NotFound]:
    for item in cls.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == name:
            decorators = {_decorator_name(d) for d in item.decorator_list}
            return Found(
                target,
                "function",
                file,
                item.lineno,
                _signature(item.args, skip_first="staticmethod" not in decorators),
            )
    return NotFound(f"a method of class {cls.name} in {_show_path(file)}, which has no {name!r}")


def _class_signature(
    cls: ast.ClassDef, tree: ast.Module, file: Path, package: str, path: list[str], depth: int
) -> Optional[Signature]:
    """__init__'s parameters (without self), a dataclass's fields, or the first base class's."""
    for item in cls.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            return _signature(item.args, skip_first=True)
    if any(_decorator_name(d) == "dataclass" for d in cls.decorator_list):
        return _dataclass_signature(cls)
    bases = [b for b in cls.bases if not (isinstance(b, ast.Name) and b.id == "object")]
    if not bases:
        return Signature((), (), False)
    base = _dotted(bases[0])
    if base is None or depth >= MAX_DEPTH:
        return None
    head, _, rest = base.partition(".")
    binding = _bindings(tree).get(head)
    if isinstance(binding, ast.ClassDef) and not rest:
        return _class_signature(binding, tree, file, package, path, depth + 1)
    if isinstance(binding, tuple):
        found = _find(".".join(filter(None, [binding[0], rest])), path, depth + 1)
        return found.signature if isinstance(found, Found) and found.kind == "class" else None
    return None


def _dataclass_signature(cls: ast.ClassDef) -> Signature:
    accepted, required = [], []
    for item in cls.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            if "ClassVar" in ast.unparse(item.annotation):
                continue
            accepted.append(item.target.id)
            if item.value is None:
                required.append(item.target.id)
    return Signature(tuple(accepted), tuple(required), False)


def _signature(args: ast.arguments, skip_first: bool) -> Signature:
    positional = [*args.posonlyargs, *args.args]
    defaults_from = len(positional) - len(args.defaults)
    accepted, required = [], []
    for i, arg in enumerate(positional):
        if skip_first and i == 0:
            continue
        if i < len(args.posonlyargs):
            if i < defaults_from:  # positional-only and required: no key can fill it
                required.append(arg.arg)
            continue
        accepted.append(arg.arg)
        if i < defaults_from:
            required.append(arg.arg)
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        accepted.append(arg.arg)
        if default is None:
            required.append(arg.arg)
    return Signature(tuple(accepted), tuple(required), args.kwarg is not None)


def _bindings(tree: ast.Module) -> dict[str, object]:
    """Top-level names: a def/class node, or (absolute source, line) for an import; later bindings win."""
    found = getattr(tree, "tfrun_bindings", None)
    if found is None:
        found = {}
        _collect(tree.body, found, getattr(tree, "tfrun_package", ""))
        tree.tfrun_bindings = found  # type: ignore[attr-defined]
    return found


AMBIGUOUS = "ambiguous"  # bound in more than one branch (`try: from x import y` / `except: y = None`)
STAR = "*"  # the key under which `from x import *` sources are kept


def _collect(body: list[ast.stmt], found: dict[str, object], package: str, conditional: bool = False) -> None:
    def bind(name: str, value: object) -> None:
        if conditional and name in found and found[name] is not value:
            found[name] = AMBIGUOUS
        else:
            found[name] = value

    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bind(node.name, node)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            for alias in node.names:
                if base is None:
                    continue
                if alias.name == "*":
                    found.setdefault(STAR, [])
                    found[STAR].append(base)  # type: ignore[union-attr]
                else:
                    bind(alias.asname or alias.name, (f"{base}.{alias.name}", node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                head = alias.name if alias.asname else alias.name.partition(".")[0]
                bind(alias.asname or head, (head, node.lineno))
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for name in ast.walk(t):
                    if isinstance(name, ast.Name):
                        bind(name.id, node)
        elif isinstance(node, ast.If | ast.Try | ast.With):
            for block in ("body", "orelse", "finalbody"):
                _collect(getattr(node, block, []) or [], found, package, conditional or not isinstance(node, ast.With))
            for handler in getattr(node, "handlers", []):
                _collect(handler.body, found, package, True)


def _absolute(module: Optional[str], level: int, package: str) -> Optional[str]:
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, *([module] if module else [])]) or None


@lru_cache(maxsize=64)
def _parse_file(file: str, mtime: float) -> Optional[ast.Module]:
    try:
        source = Path(file).read_text(encoding="utf-8", errors="replace")
        return ast.parse(source, filename=file)
    except (SyntaxError, ValueError, OSError):
        return None


def _parse(file: str, mtime: float) -> Optional[ast.Module]:
    return _parse_file(file, mtime)


def _decorator_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _dotted(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def _close(name: str, candidates: list[str]) -> str:
    """A close name, else what the module does define."""
    return did_you_mean(name, candidates) or (f"; it defines: {', '.join(candidates[:12])}" if candidates else "")


def _close_modules(name: str, path: list[str]) -> str:
    """Modules in the current directory named like `name` (the usual typo)."""

    here = Path(path[0]) if path else Path.cwd()
    try:
        names = sorted({p.stem for p in here.iterdir() if (p.suffix == ".py" or (p / "__init__.py").is_file())})
    except OSError:
        return ""
    return did_you_mean(name, names)


def _path_text(path: list[str]) -> str:
    cwd = os.getcwd()
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    text = f"the current directory {_show_path(Path(cwd))}"
    if extra:
        text += ", PYTHONPATH " + os.pathsep.join(extra)
    return text + " and the installed packages"


def _show_path(path: Path) -> str:
    """A path as a person reads it here: relative to the working dir when under it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)
