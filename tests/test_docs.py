"""The docs in step with the code.

- docs/plugins.md has a table row for every field of every record in hotplex.records, and
  names every abstract method of every interface in hotplex.interfaces;
- docs/configuration.md names every config key path (core models and plugin sections);
- docs/architecture.md carries the error tree of hotplex/errors.py, every AgentEvent type
  with its data keys, every audit event type and every core CLI command;
- the example plugin in docs/plugins.md installs, runs and passes its own test.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from hotplex import errors, events, interfaces, records
from hotplex.cli import build_cli
from hotplex.config import Settings
from hotplex.plugins import make_plugin_manager
from hotplex.testing.distributions import write_distribution

DOCS = Path(__file__).parents[1] / "docs"
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")


def read(name: str) -> str:
    path = DOCS / name
    assert path.is_file(), f"docs/{name} is missing"
    return path.read_text(encoding="utf-8")


def headings(text: str) -> list[tuple[int, int, str]]:
    """(line index, level, title) of every heading outside fenced code blocks."""
    found = []
    fenced = False
    for index, line in enumerate(text.splitlines()):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            found.append((index, len(match.group(1)), match.group(2)))
    return found


def section(text: str, title: str) -> str | None:
    """The text under the first heading titled ``title``, up to the next heading of the
    same or a higher level; None when there is no such heading."""
    lines = text.splitlines()
    marks = headings(text)
    for position, (index, level, found) in enumerate(marks):
        if found != title:
            continue
        end = len(lines)
        for next_index, next_level, _ in marks[position + 1 :]:
            if next_level <= level:
                end = next_index
                break
        return "\n".join(lines[index + 1 : end])
    return None


def row_names(text: str) -> list[str]:
    """The backticked names in the first cell of every table row: | `name` | ..."""
    return re.findall(r"^\|\s*`([^`]+)`\s*\|", text, flags=re.MULTILINE)


def backticked(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


# -- (a) records: a table row per field ----------------------------------------------

RECORDS = [name for name in records.__all__ if dataclasses.is_dataclass(getattr(records, name))]


def test_records_are_found() -> None:
    assert len(RECORDS) == len(records.__all__), (
        f"hotplex.records.__all__ names non-dataclasses: "
        f"{sorted(set(records.__all__) - set(RECORDS))}"
    )


@pytest.mark.parametrize("name", RECORDS)
def test_record_fields_are_documented(name: str) -> None:
    title = f"`{name}`"
    body = section(read("plugins.md"), title)
    assert body is not None, f"docs/plugins.md has no heading '### {title}' for records.{name}"
    fields = [f.name for f in dataclasses.fields(getattr(records, name))]
    rows = row_names(body)
    missing = [f for f in fields if f not in rows]
    assert not missing, (
        f"docs/plugins.md, table under '### {title}': no row for field(s) {missing} of "
        f"records.{name} (write each as a row starting '| `field` |')"
    )
    stale = [r for r in rows if r not in fields]
    assert not stale, (
        f"docs/plugins.md, table under '### {title}': row(s) {stale} name no field of "
        f"records.{name} (fields: {fields})"
    )


# -- (b) configuration: every key path ------------------------------------------------


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The model under ``X``, ``X | None`` or ``tuple[X, ...]``; None under wider unions."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = [
        a for a in getattr(annotation, "__args__", ()) if a is not type(None) and a is not Ellipsis
    ]
    return _inner_model(args[0]) if len(args) == 1 else None


def key_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        inner = _inner_model(info.annotation)
        if inner is not None:
            paths += key_paths(inner, f"{path}.")
    return paths


def all_key_paths() -> list[str]:
    paths = key_paths(Settings)
    sections = make_plugin_manager(environ={}).config_sections()
    for name, section_spec in sorted(sections.items()):
        paths += key_paths(section_spec.model, f"plugins.{name}.")
    return paths


def test_key_paths_are_found() -> None:
    paths = all_key_paths()
    for expected in ("server.api_keys.name", "security.waf.enabled", "plugins.slack.enabled"):
        assert expected in paths, f"the key walker misses {expected}"


def test_every_config_key_is_documented() -> None:
    documented = backticked(read("configuration.md"))
    missing = [p for p in all_key_paths() if p not in documented]
    assert not missing, (
        f"docs/configuration.md does not document {len(missing)} key path(s), written in "
        f"full as `a.b.c`: {missing}"
    )


def test_configuration_reference_names_only_real_keys() -> None:
    reference = section(read("configuration.md"), "Reference")
    assert reference is not None, "docs/configuration.md has no '## Reference' section"
    real = set(all_key_paths())
    stale = [name for name in row_names(reference) if name not in real]
    assert not stale, f"docs/configuration.md reference rows name no config key: {stale}"


# -- (c) interfaces: every abstract method ---------------------------------------------

ABCS = [
    name
    for name, obj in vars(interfaces).items()
    if inspect.isclass(obj) and obj.__module__ == interfaces.__name__ and inspect.isabstract(obj)
]


def test_interfaces_are_found() -> None:
    assert {"Provider", "AgentProcess", "ChatAdapter", "Storage"} <= set(ABCS), ABCS


@pytest.mark.parametrize("name", ABCS)
def test_interface_methods_are_documented(name: str) -> None:
    title = f"`{name}`"
    body = section(read("plugins.md"), title)
    assert body is not None, f"docs/plugins.md has no heading '### {title}' for interfaces.{name}"
    cls = getattr(interfaces, name)
    missing = [
        method
        for method in sorted(cls.__abstractmethods__)
        if not re.search(rf"`{re.escape(method)}[`(]", body)
    ]
    assert not missing, (
        f"docs/plugins.md, section '### {title}': abstract method(s) {missing} of "
        f"interfaces.{name} are not documented (write `name(...)` or `name`)"
    )


# -- (d) errors: every class, and the tree as drawn in errors.py -----------------------

ERRORS = [
    name
    for name, obj in vars(errors).items()
    if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__
]


def error_tree() -> str:
    doc = errors.__doc__ or ""
    block = doc.split("::", 1)[-1].strip("\n")
    tree = []
    for line in block.splitlines():
        if not line.strip():
            break
        tree.append(line.rstrip())
    return textwrap.dedent("\n".join(tree))


def test_every_error_class_is_documented() -> None:
    body = section(read("architecture.md"), "Errors")
    assert body is not None, "docs/architecture.md has no '## Errors' section"
    missing = [name for name in ERRORS if not re.search(rf"\b{name}\b", body)]
    assert not missing, f"docs/architecture.md '## Errors' does not name {missing}"


def test_error_tree_is_copied_from_errors_py() -> None:
    tree = error_tree()
    assert tree.startswith("HotplexError"), "could not find the tree in hotplex/errors.py"
    assert tree in read("architecture.md"), (
        "docs/architecture.md: the error tree differs from the one in the docstring of "
        "hotplex/errors.py; copy it again"
    )


# -- (e) events: every AgentEvent type with its data keys, every audit type -----------


@pytest.mark.parametrize("kind", sorted(events.EVENT_DATA))
def test_agent_event_type_is_documented_with_its_data_keys(kind: str) -> None:
    text = read("architecture.md")
    rows = re.findall(rf"^\|\s*`{re.escape(kind)}`\s*\|.*$", text, flags=re.MULTILINE)
    assert rows, f"docs/architecture.md has no table row '| `{kind}` |' for the AgentEvent type"
    required, optional = events.EVENT_DATA[kind]
    cells = backticked(rows[0])
    missing = sorted(k for k in required | optional if k not in cells)
    assert not missing, (
        f"docs/architecture.md, row of AgentEvent type `{kind}`: data key(s) {missing} "
        f"are not listed"
    )


def test_every_audit_type_is_documented() -> None:
    documented = backticked(read("architecture.md"))
    missing = sorted(t for t in events.AUDIT_TYPES if t not in documented)
    assert not missing, f"docs/architecture.md does not name the audit type(s) {missing}"


# -- the CLI -------------------------------------------------------------------------


def test_every_core_cli_command_is_documented() -> None:
    import click

    pm = make_plugin_manager(entry_points=False, environ={})
    group = build_cli(pm)
    commands = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            commands += [f"hotplex {name} {sub}" for sub in sorted(command.commands)]
        else:
            commands.append(f"hotplex {name}")
    text = read("architecture.md")
    missing = [c for c in commands if not re.search(rf"`{re.escape(c)}[` ]", text)]
    assert not missing, f"docs/architecture.md does not document the CLI command(s) {missing}"


# -- the example plugin of docs/plugins.md --------------------------------------------


def example_files() -> dict[str, str]:
    """Every fenced block preceded by ``<!-- file: PATH -->`` in docs/plugins.md."""
    pattern = re.compile(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)\n```", re.DOTALL)
    return {path: body + "\n" for path, body in pattern.findall(read("plugins.md"))}


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    files = example_files()
    for required in ("pyproject.toml", "my_pkg/plugin.py", "tests/test_plugin.py"):
        assert required in files, f"docs/plugins.md lacks the example file {required}"
    project = tomllib.loads(files["pyproject.toml"])["project"]
    site = tmp_path_factory.mktemp("example")
    write_distribution(
        site,
        project["name"],
        version=project["version"],
        entry_points={"hotplex": project["entry-points"]["hotplex"]},
        files={p: t for p, t in files.items() if p != "pyproject.toml"},
    )
    env = {**os.environ, "PYTHONPATH": str(site), "HOTPLEX_DISABLE_PLUGINS": "", "HOME": str(site)}
    env.pop("HOTPLEX_CONFIG", None)
    return site, env


def run(site: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_example_plugin_is_listed(example: tuple[Path, dict[str, str]]) -> None:
    site, env = example
    out = run(site, env, "-m", "hotplex", "plugins").stdout
    rows = [line for line in out.splitlines() if line.startswith("myplugin ")]
    assert rows, f"`hotplex plugins` does not list the example plugin:\n{out}"
    assert "available" in rows[0] and "add_config, register_commands" in rows[0], rows[0]


def test_example_plugin_command_reads_its_section(
    example: tuple[Path, dict[str, str]],
) -> None:
    site, env = example
    config = site / "hotplex.yaml"
    config.write_text("plugins:\n  myplugin: {greeting: hi}\n")
    greet = run(site, env, "-m", "hotplex", "greet", "Ada")
    assert greet.returncode == 0 and greet.stdout == "hi, Ada\n", greet.stdout + greet.stderr
    config.write_text("plugins:\n  myplugin: {greting: hi}\n")
    bad = run(site, env, "-m", "hotplex", "config", "validate")
    expected = "plugins.myplugin.greting: unknown key; did you mean greeting?"
    assert bad.returncode == 1 and expected in bad.stderr, bad.stderr
    assert f"error: hotplex.yaml: {expected}" in read("plugins.md")
    config.unlink()


def test_example_plugin_test_passes(example: tuple[Path, dict[str, str]]) -> None:
    site, env = example
    result = run(site, env, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")
    assert result.returncode == 0, result.stdout + result.stderr
