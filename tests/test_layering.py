"""No module imports a layer above its own, read from the source with ``ast`` (imports
inside functions and under ``TYPE_CHECKING`` count too: a lazy import is still a
dependency).

    contract     records, interfaces, types, events, errors, ... (what plugins rely on)
    composition  plugin manager, runtime, compose, sinks, middleware chain
    features     engine, providers, storage, WAF, agent tools
    surface      core plugin (wires the features), embedding API, gateway, web, CLI, daemon
                 client, test kit
"""

from __future__ import annotations

import ast
from pathlib import Path

import hotplex

ROOT = Path(hotplex.__file__).parent

#: Layer of each top-level name under hotplex/, lowest first.
LAYERS: dict[str, int] = {
    **dict.fromkeys(
        (
            "address",
            "aio",
            "confinement",
            "config",
            "context",
            "errors",
            "events",
            "hookspecs",
            "identity",
            "images",
            "interfaces",
            "outbox",
            "records",
            "services",
            "stored",
            "tool_names",
            "types",
        ),
        0,
    ),
    **dict.fromkeys(
        (
            "binaries",
            "commands",
            "compose",
            "middleware",
            "plugins",
            "resources",
            "runtime",
            "sinks",
            "templating",
        ),
        1,
    ),
    **dict.fromkeys(
        (
            "agent_tools",
            "agent_process",
            "chat",
            "chat_commands",
            "engine",
            "inbound",
            "providers",
            "storage",
            "waf",
        ),
        2,
    ),
    **dict.fromkeys(("__main__", "cli", "client", "core", "embed", "gateway", "testing", "web"), 3),
}
LAYER_NAMES = ("contract", "composition", "features", "surface")

#: Pairs of packages that must not import each other, in either direction, beyond the layers.
APART = (
    ("engine", "providers"),  # the engine drives a Provider through the interface only
    ("engine", "storage"),  # they meet at the Storage interface and its records
)

#: (importer, imported) allowed against the rules, with the reason.
EXCEPTIONS = {
    ("context", "plugins"): "PluginContext names the plugin manager's type (TYPE_CHECKING)",
}


def top(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "hotplex":
        return None
    return parts[1] if len(parts) > 1 else ""


def imports_in(source: str, module: str) -> set[str]:
    """Every module ``source`` (the text of module ``module``) imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.rsplit(".", node.level)[0]
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.add(name)
            if name == "hotplex":  # from hotplex import engine
                found.update(f"hotplex.{alias.name}" for alias in node.names)
    return found


def imports_of(path: Path) -> set[str]:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = (*parts[:-1], "_")  # a relative import in a package starts at the package
    return imports_in(path.read_text(encoding="utf-8"), ".".join(("hotplex", *parts)))


def violations() -> list[str]:
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        importer = relative.parts[0].removesuffix(".py")
        if importer == "__init__":
            continue  # the root re-exports the public surface, lazily above the contract
        assert importer in LAYERS, f"hotplex/{relative}: add {importer!r} to LAYERS"
        for module in sorted(imports_of(path)):
            imported = top(module)
            if not imported or imported == importer or imported not in LAYERS:
                continue
            if (importer, imported) in EXCEPTIONS:
                continue
            if LAYERS[imported] > LAYERS[importer]:
                problems.append(
                    f"hotplex/{relative} ({LAYER_NAMES[LAYERS[importer]]}) imports {module} "
                    f"({LAYER_NAMES[LAYERS[imported]]})"
                )
            if (importer, imported) in APART or (imported, importer) in APART:
                problems.append(f"hotplex/{relative} imports {module}: keep them apart")
    return sorted(set(problems))


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert violations() == []


def test_lazy_type_only_and_relative_imports_count() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from hotplex.engine.limits import detect_backend\n"
        "def f():\n    from hotplex.cli import main\n"
        "from . import sibling\n"
        "from hotplex import gateway\n"
    )
    assert imports_in(source, "hotplex.waf.policy") == {
        "typing",
        "hotplex.engine.limits",
        "hotplex.cli",
        "hotplex.waf",
        "hotplex",
        "hotplex.gateway",
    }
