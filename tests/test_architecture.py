"""The import graph of advcl/, drawn from the source (every ``import``, function-level ones included), follows the
layering the README's Layout section prints: no module imports one of a higher layer, and no modules import each
other in a circle. The example plugins in plugins/ import advcl only through the public ``advcl.api``. A dataset's task
is an object (advcl/data/tasks.py): no module compares ``something.task`` to a string."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top; a module belongs to the first layer with a prefix that names it or a package above it.
LAYERS = (
    ("runtime/errors", ("advcl", "advcl.errors", "advcl.interrupts", "advcl.hookspecs", "advcl.runtime", "advcl.plots")),
    ("modeling/data/config", ("advcl.config", "advcl.data", "advcl.modeling", "advcl.plugins", "advcl.runs",
                              "advcl.tracking")),
    ("losses/perturbers", ("advcl.losses", "advcl.perturbers")),
    ("objectives", ("advcl.objectives", "advcl.api")),
    ("evaluation", ("advcl.evaluation", "advcl.embedding")),
    ("engine", ("advcl.engine",)),
    ("commands' library", ("advcl.attacks", "advcl.export", "advcl.grid", "advcl.report", "advcl.completion")),
    ("cli", ("advcl.cli", "advcl.__main__")),
)


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every module name an import statement anywhere in ``tree`` names (``from a import b`` names ``a.b``, which
    the caller narrows to ``a`` where ``b`` is not a module)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + is_package]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            names |= {source} | {f"{source}.{alias.name}" for alias in node.names}
    return names


def import_graph(package: Path) -> dict[str, set[str]]:
    """``{module: the advcl modules it imports}`` for every module under ``package``."""
    files = {module_name(p, package.parent): p for p in package.rglob("*.py")}
    graph = {}
    for module, path in files.items():
        targets = set()
        for name in imported(ast.parse(path.read_text(encoding="utf-8")), module, path.name == "__init__.py"):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module and name.split(".")[0] == package.name:
                targets.add(name)
        graph[module] = targets
    return graph


def layer_of(module: str) -> int:
    for level, (_, prefixes) in reversed(list(enumerate(LAYERS))):
        if any(module == p or module.startswith(p + ".") for p in prefixes if p != "advcl"):
            return level
    if module == "advcl":
        return 0
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to the README's Layout section")


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a module in a higher layer, in words."""
    return [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
            for a, targets in sorted(graph.items()) for b in sorted(targets) if layer_of(b) > layer_of(a)]


def task_string_comparisons(source: str, where: str) -> list[str]:
    """Every comparison of a task with a string literal (or a tuple, list or set of them), as ``where:line``: a task
    is a name or attribute called ``task`` (or its ``name``), or ``X.get("task")`` / ``X["task"]``."""
    def is_task(node):
        if isinstance(node, ast.Attribute) and node.attr == "name":
            node = node.value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            node = node.args[0] if node.args else None
        elif isinstance(node, ast.Subscript):
            node = node.slice
        return (isinstance(node, ast.Attribute) and node.attr == "task" or isinstance(node, ast.Name)
                and node.id == "task" or isinstance(node, ast.Constant) and node.value == "task")

    def is_text(node):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return bool(node.elts) and all(is_text(e) for e in node.elts)
        return isinstance(node, ast.Constant) and isinstance(node.value, str)

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(is_task(a) and is_text(b) or is_text(a) and is_task(b) for a, b in zip(sides, sides[1:])):
                found.append(f"{where}:{node.lineno}")
    return found


@pytest.fixture(scope="module")
def graph():
    return import_graph(ROOT / "advcl")


def test_the_graph_reader_sees_function_level_relative_and_from_imports(tmp_path):
    package = tmp_path / "advcl"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("from . import leaf\n")
    (package / "low" / "leaf.py").write_text("import os\n")
    (package / "high.py").write_text("def f():\n    from advcl.low.leaf import x\n    import advcl.low\n")
    assert import_graph(package) == {"advcl": set(), "advcl.low": {"advcl.low.leaf"}, "advcl.low.leaf": set(),
                                     "advcl.high": {"advcl.low.leaf", "advcl.low"}}
    (package / "low" / "leaf.py").write_text("def g():\n    from ..high import f\n")
    assert circles(import_graph(package)) == [["advcl.high", "advcl.low", "advcl.low.leaf"]]


def test_an_import_from_a_lower_layer_to_a_higher_one_is_named():
    graph = {"advcl.losses.infonce": {"advcl.engine.distributed", "advcl.runtime.distributed"},
             "advcl.cli.train": {"advcl.engine.session"}}
    assert upward(graph) == ["advcl.losses.infonce (losses/perturbers) imports advcl.engine.distributed (engine)"]


def test_every_module_has_a_layer_and_nothing_imports_upward(graph):
    assert not upward(graph), "\n".join(upward(graph))


def test_no_modules_import_each_other_in_a_circle(graph):
    assert circles(graph) == []


def test_the_runtime_imports_nothing_above_errors(graph):
    for module in (m for m in graph if m.startswith("advcl.runtime")):
        assert graph[module] <= {"advcl.errors", "advcl.runtime"} | {m for m in graph if m.startswith("advcl.runtime")}


def test_the_task_check_sees_each_form_of_comparison():
    source = ('a = dataset.task == "sts"\nb = "sts" != self.dataset.task\nc = d.task in ("x", "y")\n'
              'd = d.task is SIMILARITY\ne = d.task.name == "sts"\nf = job.name == "sts"\ng = 1 < d.task < "z"\n'
              'h = task == "sts"\ni = meta.get("task") == "sts"\nj = task not in ("a", "b")\nk = meta["task"] != "x"\n'
              'l = meta.get("name") == "sts"\nm = meta["name"] == "x"\nn = tasks == "sts"\n')
    assert task_string_comparisons(source, "m") == ["m:1", "m:2", "m:3", "m:5", "m:7", "m:8", "m:9", "m:10", "m:11"]


def test_no_module_compares_a_task_to_a_string():
    found = [hit for path in sorted((ROOT / "advcl").rglob("*.py"))
             for hit in task_string_comparisons(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert not found, "compare the task object (advcl.data.tasks), not its name: " + ", ".join(found)


@pytest.mark.parametrize("plugin", sorted(p.name for p in (ROOT / "plugins").iterdir() if p.is_dir()))
def test_example_plugins_import_advcl_only_through_the_public_api(plugin):
    sources = [p for p in (ROOT / "plugins" / plugin).rglob("*.py") if "tests" not in p.relative_to(ROOT).parts]
    assert sources
    reached = set()
    for path in sources:
        for name in imported(ast.parse(path.read_text(encoding="utf-8")), "", False):
            if name.split(".")[0] == "advcl":
                reached.add(name if name in ("advcl", "advcl.api") else name.rsplit(".", 1)[0])
    assert reached <= {"advcl.api"} and "advcl.api" in reached, reached


def test_the_public_api_exports_what_it_lists():
    import advcl.api as api

    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert not missing and sorted(api.__all__) == sorted(n for n in vars(api) if not n.startswith("_") and n != "annotations")
