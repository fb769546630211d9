"""The import graph: no module uses another module's private names (nor a private module of
another package), only
``pipeline/_sklearn_compat.py`` imports scikit-learn's, ``features`` never imports
``pipeline``, and there is no import cycle.

The graph is read from the source (every import, at module level or inside a function, and
attribute access on an imported module), so the test needs no import to succeed. ``KNOWN_*``
would list accepted exceptions; they are empty, and the test fails when one appears.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"features": "radfusion.features", "pipeline": "radfusion.pipeline"}
COMPAT = "radfusion.pipeline._sklearn_compat"

KNOWN_PRIVATE_USES: set[tuple[str, str, str]] = set()
KNOWN_CYCLES: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    modules = {}
    for folder, package in PACKAGES.items():
        for file in sorted((ROOT / folder).rglob("*.py")):
            parts = [package, *file.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = file
    return modules


MODULES = _modules()


def _target(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _package(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _private_module_use(module: str, target: str) -> bool:
    """A private module (``fusion/_model.py``) is imported only by its own package's modules."""
    parent, _, name = target.rpartition(".")
    return _is_private(name) and target != COMPAT and _package(module) != parent


def _scan() -> tuple[dict[str, set[str]], set[tuple[str, str, str]], list[tuple[str, str]]]:
    """Edges between radfusion modules, private names used across modules, and modules other
    than the compat module importing scikit-learn's private names."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    private: set[tuple[str, str, str]] = set()
    sklearn_private: list[tuple[str, str]] = []
    for module, file in MODULES.items():
        aliases: dict[str, str] = {}  # local name -> radfusion module it stands for
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _target(module, node)
                if target.startswith("sklearn") and module != COMPAT:
                    names = [a.name for a in node.names]
                    if any(_is_private(p) for p in target.split(".")) or any(
                        _is_private(n) for n in names
                    ):
                        sklearn_private.append((module, target))
                if not target.startswith("radfusion"):
                    continue
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    if full in MODULES:
                        aliases[alias.asname or alias.name] = full
                        edges[module].add(full)
                        if _private_module_use(module, full):
                            private.add((module, target, alias.name))
                    elif target in MODULES:
                        edges[module].add(target)
                        if _is_private(alias.name) or _private_module_use(module, target):
                            private.add((module, target, alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in MODULES:
                        edges[module].add(alias.name)
                        if _private_module_use(module, alias.name):
                            private.add((module, alias.name, ""))
                        aliases[alias.asname or alias.name] = alias.name
        # ``def _report(): from . import report; return report`` and ``rep = _report()``
        getters = {
            node.name: aliases[stmt.value.id]
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef)
            for stmt in node.body
            if isinstance(stmt, ast.Return)
            and isinstance(stmt.value, ast.Name)
            and stmt.value.id in aliases
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id in getters
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        aliases[target.id] = getters[node.value.func.id]
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _is_private(node.attr)
            ):
                private.add((module, aliases[node.value.id], node.attr))
        edges[module].discard(module)
    return edges, private, sklearn_private


def _cycles(edges: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


EDGES, PRIVATE, SKLEARN_PRIVATE = _scan()


def test_the_scan_sees_the_packages():
    assert len(MODULES) > 30
    assert "radfusion.pipeline.fusion._kits" in EDGES["radfusion.pipeline.fusion._model"]
    assert "radfusion.features.errors" in EDGES["radfusion.pipeline.fusion._inputs"]
    assert "radfusion.pipeline.validation" in EDGES["radfusion.pipeline.experiment"]


def test_evaluation_never_imports_model_building():
    """validation/ and report/ score and describe whatever models they are given: they read
    what the estimators say (``fuses_groups``, ``inner_model``) and what the CV result
    records (``fused``), never fusion/ or preprocessing/ themselves."""
    building = ("radfusion.pipeline.fusion", "radfusion.pipeline.preprocessing")
    offenders = [
        f"{module} imports {target}"
        for module, targets in EDGES.items()
        if module.startswith(("radfusion.pipeline.validation", "radfusion.pipeline.report"))
        for target in targets
        if target.startswith(building)
    ]
    assert not offenders, offenders


def test_private_modules_are_used_only_inside_their_package():
    private = _private_module_use
    assert private("radfusion.pipeline.report._document", "radfusion.pipeline.fusion._model")
    assert not private("radfusion.pipeline.fusion", "radfusion.pipeline.fusion._model")
    assert not private("radfusion.pipeline.fusion._model", "radfusion.pipeline.fusion._stacking")


def test_features_never_imports_pipeline():
    offenders = [
        (m, d)
        for m, targets in EDGES.items()
        if m.startswith("radfusion.features")
        for d in targets
        if d.startswith("radfusion.pipeline")
    ]
    assert not offenders


def test_only_the_compat_module_imports_private_sklearn_names():
    assert not SKLEARN_PRIVATE


def test_no_new_use_of_another_modules_private_names():
    assert PRIVATE - KNOWN_PRIVATE_USES == set()
    assert KNOWN_PRIVATE_USES - PRIVATE == set(), "fixed: remove it from KNOWN_PRIVATE_USES"


def test_no_new_import_cycles():
    cycles = _cycles(EDGES)
    assert cycles - KNOWN_CYCLES == set()
    assert KNOWN_CYCLES - cycles == set(), "untied: remove it from KNOWN_CYCLES"


#: Underscored attributes read across modules on purpose, each with its reason.
PUBLIC_UNDERSCORED = {
    "_exit": "os._exit, the standard library's documented exit without clean-up",
    "_parameter_constraints": "scikit-learn's documented parameter-validation mechanism",
}


def _foreign_attributes() -> list[tuple[str, int, str]]:
    """``obj._name`` read where ``obj`` is not ``self``, ``cls`` or ``super()`` and no code of
    the module defines ``_name``: reaching into another module's object (the import scan
    cannot see attribute access on an object)."""
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                defined.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super":
                continue
            if node.attr not in defined and node.attr not in PUBLIC_UNDERSCORED:
                found.append((module, node.lineno, ast.unparse(node)))
    return found


def test_no_module_reads_another_modules_private_attributes():
    assert _foreign_attributes() == []
