"""Jinja2 templates shipped with HotPlex (installed as the package ``hotplex.templates``)."""
