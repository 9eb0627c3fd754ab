"""Example configs and default rules shipped with HotPlex (installed as ``hotplex.configs``)."""
