"""The package's layout: subpackages by layer, no import circles, short functions.

Parses the source (no imports run), so it checks every import, lazy ones inside
functions included.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "weibo_lstm"

#: Each subpackage may import only the ones before it (and itself). The top-level
#: `__init__` (the public API) and `__main__` sit above all of them.
LAYERS = (
    "errors",
    "version",
    "data",
    "preprocessing",
    "distribute",
    "models",
    "training",
    "serving",
    "tasks",
    "jobs",
    "cli",
)
#: Longest function allowed, in lines from `def` to its last line, without its
#: docstring (Google-style docstrings with Args and a runnable Example are long by design).
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, pathlib.Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(path: pathlib.Path, modules: dict[str, pathlib.Path]) -> set[str]:
    """The package modules `path` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in modules}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        # Importing a.b.c runs a/__init__ and a/b/__init__ too.
        graph[name] = {m for m in _imports(path, modules)}
    return graph


def test_every_module_belongs_to_a_layer():
    for module in _graph():
        layer = _layer(module)
        assert layer in (None, "__main__", "assets", *LAYERS), module


def test_layers_import_only_layers_below_them():
    violations = []
    for module, imported in _graph().items():
        layer = _layer(module)
        if layer not in LAYERS:  # weibo_lstm/__init__ and __main__: the top
            continue
        for target in imported:
            target_layer = _layer(target)
            if target_layer is None:  # the package __init__: the public API
                violations.append(f"{module} -> {target} (the package root)")
            elif LAYERS.index(target_layer) > LAYERS.index(layer):
                violations.append(f"{module} -> {target}")
    assert not violations, "imports against the layering:\n" + "\n".join(sorted(violations))


def test_nothing_in_the_package_imports_the_command_line():
    importers = [
        module
        for module, imported in _graph().items()
        if _layer(module) not in ("cli", "__main__")
        and any(_layer(target) == "cli" for target in imported)
    ]
    assert not importers


def test_no_import_circles():
    graph = _graph()
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module):
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_the_cycle_finder_finds_a_circle(tmp_path, monkeypatch):
    # The check above must be able to fail: a two-module circle is reported.
    package = tmp_path / "weibo_lstm"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("")
    (package / "data" / "a.py").write_text("def f():\n    from weibo_lstm.data.b import g\n")
    (package / "data" / "b.py").write_text("from weibo_lstm.data import a\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", package)
    with pytest.raises(AssertionError, match=re.escape("weibo_lstm.data.a -> weibo_lstm.data.b")):
        test_no_import_circles()


def test_functions_are_short():
    long_functions = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if ast.get_docstring(node) is not None:
                    docstring = node.body[0]
                    length -= docstring.end_lineno - docstring.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{module}.{node.name}: {length} lines")
    assert not long_functions, "\n".join(long_functions)


#: Modules above every layer: what users and the command line start from.
ENTRY_POINTS = ("weibo_lstm", "weibo_lstm.__main__", "weibo_lstm.cli.main")
#: Longest module allowed, in lines.
MAX_MODULE_LINES = 400


def _exported_modules() -> set[str]:
    """The modules `weibo_lstm/__init__._EXPORTS` names (imported lazily, by string)."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets
        ):
            return {f"weibo_lstm.{ast.literal_eval(v)}" for v in node.value.values}
    raise AssertionError("weibo_lstm/__init__.py has no _EXPORTS")


def test_every_module_serves_the_library_or_the_command_line():
    """A module that neither the public API nor the command line reaches (through
    imports) is code only experiments use: it belongs in benchmarks/ or tools/."""
    graph = _graph()
    reached, todo = set(), [*ENTRY_POINTS, *_exported_modules()]
    while todo:
        module = todo.pop()
        if module in reached or module not in graph:
            continue
        reached.add(module)
        parts = module.split(".")  # importing a.b.c runs a/__init__ and a/b/__init__
        todo += [".".join(parts[:i]) for i in range(1, len(parts))] + sorted(graph[module])
    assert not sorted(set(graph) - reached), sorted(set(graph) - reached)


def _public_definitions() -> dict[str, set[str]]:
    """Module -> the public functions and classes it defines at top level."""
    found = {}
    for module, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found[module] = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")
        }
    return found


def _names_used(path: pathlib.Path) -> set[str]:
    """Every identifier `path` reads or imports (its own definitions' names excluded)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.name.split(".")[-1])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # `_EXPORTS` names its classes as strings
    return names


def test_every_public_function_and_class_is_used_by_the_package():
    """A public function or class that no other module of the package uses (nor the
    public API exports) serves only tests or experiments."""
    from collections import Counter

    used = {module: _names_used(path) for module, path in _modules().items()}
    # How many modules use each name: a name its own module uses counts once there.
    users = Counter(name for names in used.values() for name in names)
    unused = [
        f"{module}.{name}"
        for module, names in _public_definitions().items()
        for name in sorted(names)
        if users[name] == 0
    ]
    assert not unused, "public but used by nothing in the package:\n" + "\n".join(unused)


def test_modules_are_short():
    long_modules = [
        f"{module}: {len(path.read_text(encoding='utf-8').splitlines())} lines"
        for module, path in _modules().items()
        if len(path.read_text(encoding="utf-8").splitlines()) > MAX_MODULE_LINES
    ]
    assert not long_modules, "\n".join(long_modules)
