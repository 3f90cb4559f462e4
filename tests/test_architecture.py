"""The package's shape: no import cycles, no imports hidden in functions, no private names.

The layers themselves are import-linter contracts (``[tool.importlinter]`` in pyproject.toml,
checked by ``make lint``); these tests hold the rules that import-linter does not express.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "imagegen"

#: Imports of imagegen modules allowed inside functions, and why.
LAZY_IMPORTS = {
    # The public functions are loaded on first use: Django imports the package while it loads
    # INSTALLED_APPS, before any model can be imported.
    ("imagegen/__init__.py", "imagegen"),
    # Django's idiom: system checks register when the app is ready.
    ("imagegen/apps.py", "imagegen"),
    # The same idiom in the optional Wagtail app: its receivers and checks import Wagtail's
    # models, which exist only once the app registry is ready.
    ("imagegen/contrib/wagtail/apps.py", "imagegen.contrib.wagtail"),
}


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Return the import cycles of ``graph``: its strongly connected groups of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def test_no_import_cycles() -> None:
    """Modules import down, never in a circle (imports for type checking only do not count)."""
    graph = grimp.build_graph("imagegen", exclude_type_checking_imports=True, cache_dir=None)
    assert strongly_connected(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="a")
    graph.add_import(importer="b", imported="c")
    assert strongly_connected(graph) == [{"a", "b"}]


def function_level_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """Return (line, module) of each import of an imagegen module inside a function."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ImportFrom) and in_function:
                if child.level == 0 and (child.module or "").split(".")[0] == "imagegen":
                    found.append((child.lineno, child.module))
            elif isinstance(child, ast.Import) and in_function:
                found.extend(
                    (child.lineno, alias.name)
                    for alias in child.names
                    if alias.name.split(".")[0] == "imagegen"
                )
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree, False)
    return found


def test_no_imagegen_module_is_imported_inside_a_function() -> None:
    """An import inside a function is how an import circle hides; the graph has none to hide."""
    hidden = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in python_files("imagegen")
        for line, module in function_level_imports(parse(path))
        if (str(path.relative_to(ROOT)), module) not in LAZY_IMPORTS
    ]
    assert hidden == []


def private_imports(path: Path) -> list[str]:
    """Return each ``from imagegen.x import _name`` of another module in ``path``."""
    found = []
    for node in ast.walk(parse(path)):
        if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("imagegen"):
            continue
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}")
    return found


@pytest.mark.parametrize("folder", ["imagegen", "tests", "benchmarks", "example_project"])
def test_no_module_imports_another_modules_private_name(folder: str) -> None:
    found = [line for path in python_files(folder) for line in private_imports(path)]
    assert found == []


def test_the_checks_would_see_a_hidden_import() -> None:
    tree = ast.parse("def f():\n    from imagegen.services import _x\n")
    assert function_level_imports(tree) == [(2, "imagegen.services")]


def test_the_docs_diagram_names_every_layer_of_the_contract() -> None:
    """docs/_static/architecture.svg draws the layers pyproject.toml holds the code to."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    drawing = (ROOT / "docs" / "_static" / "architecture.svg").read_text()
    rows = [line for line in drawing.splitlines() if 'class="mods"' in line]
    assert len(rows) == len(layers["layers"])
    for row, layer in zip(rows, layers["layers"], strict=True):
        for module in layer.split(":"):
            assert module.strip() in row, f"{module.strip()} is not drawn in its layer"
