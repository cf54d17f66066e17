"""The package's layers import strictly downward (docs/architecture.md), function-level imports included."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "hfqd"

# Lower number = lower layer. A module may import its own layer's modules and any lower layer, never a higher one.
LAYERS = {
    "version": 0, "utils": 0,
    "quant": 1,
    "data": 2, "eval": 2,
    "hub": 3,
    "export": 4,
    "distill": 5,
    "runner": 6, "cli": 6, "pipelines": 6,  # pipelines: the deprecated name of runner
    "bench": 7,
}


def _unit(module_path: Path) -> str:
    """The layer unit of a module: its subpackage (hfqd/quant/api.py -> quant) or its own name (hfqd/utils.py)."""
    rel = module_path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_units(module_path: Path) -> set[str]:
    unit = _unit(module_path)
    depth = len(module_path.relative_to(PACKAGE).parts) - 1  # 0 for hfqd/x.py, 1 for hfqd/sub/x.py
    found = set()
    for node in ast.walk(ast.parse(module_path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "hfqd" and len(parts) > 1:
                    found.add(parts[1])
                elif parts[0] == "hfqd":
                    found.update(alias.name for alias in node.names)
                continue
            up = node.level - 1  # levels above the module's own package
            if up > depth:
                continue
            base = [unit] if depth == 1 and up == 0 else []
            names = (node.module or "").split(".") if node.module else [alias.name for alias in node.names]
            target = (base + names)[0] if base else names[0]
            found.add(target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "hfqd" and len(parts) > 1:
                    found.add(parts[1])
    return {u for u in found if u in LAYERS and u != unit}


def test_every_unit_has_a_layer():
    units = {_unit(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert units <= set(LAYERS), f"add {sorted(units - set(LAYERS))} to LAYERS and docs/architecture.md"


def test_imports_point_downward():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue  # the top-level API gathers every layer
        unit = _unit(path)
        for target in _imported_units(path):
            if LAYERS[target] > LAYERS[unit]:
                upward.append(f"{path.relative_to(PACKAGE.parent)} ({unit}) imports {target}")
    assert not upward, "imports that point upward:\n" + "\n".join(upward)


def test_no_import_cycle_between_units():
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path != PACKAGE / "__init__.py":
            graph.setdefault(_unit(path), set()).update(_imported_units(path))
    state: dict[str, int] = {}

    def visit(node, trail):
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join(trail + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in graph.get(node, ()):
            visit(nxt, trail + [node])
        state[node] = 2

    for node in graph:
        visit(node, [])


def _body_lines(node: ast.FunctionDef) -> int:
    """Lines of a function without its docstring."""
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
            and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def test_functions_stay_short_and_recipes_stay_small():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _body_lines(node) > 60:
                long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({_body_lines(node)} lines)")
    assert not long, "split these functions (at most 60 lines without the docstring): " + ", ".join(long)
    for recipe in (PACKAGE.parent / "recipes").glob("*.py"):
        lines = len(recipe.read_text().splitlines())
        assert lines < 200, f"{recipe.name} has {lines} lines: a recipe keeps only its task (hfqd.runner.job.Task)"
