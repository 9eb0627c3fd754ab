"""The jinja2 environment over every registered template folder.

Templates are addressed ``<folder name>/<path>`` (``core/text/help.md.j2``). Undefined
variables are errors; JSON output goes through the ``tojson`` filter only.

A user's override folder (``templates.dir`` in the config) is searched first: the file
``<dir>/core/text/usage.md.j2`` replaces the shipped ``core/text/usage.md.j2``, so any
message or card can be changed without forking. An edited override is read again at its
next use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

import jinja2

from hotplex.context import ServiceKey
from hotplex.records import TemplateSpec

__all__ = ["TEMPLATES", "make_environment"]

log = logging.getLogger(__name__)


class _ResourceLoader(jinja2.BaseLoader):
    def __init__(self, specs: Mapping[str, TemplateSpec]) -> None:
        self._specs = dict(specs)

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        folder, _, rest = template.partition("/")
        spec = self._specs.get(folder)
        if spec is None or not rest or ".." in rest.split("/"):
            raise jinja2.TemplateNotFound(template)
        node = resources.files(spec.package)
        for part in [p for p in spec.subdir.split("/") if p] + rest.split("/"):
            node = node.joinpath(part)
        if not node.is_file():
            raise jinja2.TemplateNotFound(template)
        return node.read_text(encoding="utf-8"), None, lambda: True

    def list_templates(self) -> list[str]:
        found: list[str] = []
        for name, spec in self._specs.items():
            root = resources.files(spec.package)
            for part in [p for p in spec.subdir.split("/") if p]:
                root = root.joinpath(part)
            stack = [(root, "")]
            while stack:
                node, prefix = stack.pop()
                for child in node.iterdir():
                    rel = f"{prefix}{child.name}"
                    if child.is_dir():
                        stack.append((child, rel + "/"))
                    elif child.name.endswith(".j2"):
                        found.append(f"{name}/{rel}")
        return sorted(found)


#: The template environment of a running instance, in ``PluginContext.services``.
TEMPLATES = ServiceKey("templates", jinja2.Environment)


def make_environment(
    specs: Mapping[str, TemplateSpec], *, override_dir: Path | None = None
) -> jinja2.Environment:
    """The environment over ``specs``' folders; a file of ``override_dir`` with a
    template's name wins over the shipped one."""
    loader: jinja2.BaseLoader = _ResourceLoader(specs)
    if override_dir is not None:
        if not override_dir.is_dir():
            log.warning(
                "templates.dir %s is not a folder; the shipped templates apply", override_dir
            )
        loader = jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(override_dir, encoding="utf-8"), loader]
        )
    return jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
