"""No module-level mutable registries in ``hotplex/``: state that collects at run time
lives in objects that are passed in, never in a module's globals."""

from __future__ import annotations

import ast
from pathlib import Path

import hotplex

ROOT = Path(hotplex.__file__).parent
EMPTY_CONTAINERS = {
    "dict",
    "list",
    "set",
    "defaultdict",
    "OrderedDict",
    "WeakValueDictionary",
    "WeakKeyDictionary",
    "WeakSet",
    "deque",
    "Counter",
}


def _starts_empty(value: ast.expr) -> bool:
    if isinstance(value, ast.Dict | ast.List | ast.Set):
        return not (getattr(value, "keys", None) or getattr(value, "elts", None))
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in EMPTY_CONTAINERS and not value.args
    return False


def registries(source: str) -> list[str]:
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if _starts_empty(value) and names != ["__all__"]:
            found.append(f"{', '.join(names)} (line {node.lineno})")
    return found


def test_the_check_sees_a_registry() -> None:
    assert registries("_ACTIVE: dict[str, int] = {}\nX = set()\n__all__: list[str] = []\n") == [
        "_ACTIVE (line 1)",
        "X (line 2)",
    ]
    assert registries("RULES = {'a': 1}\nNAMES = frozenset()\n") == []


def test_no_module_level_mutable_registries() -> None:
    found = {
        str(path.relative_to(ROOT.parent)): hits
        for path in sorted(ROOT.rglob("*.py"))
        if (hits := registries(path.read_text(encoding="utf-8")))
    }
    assert found == {}
