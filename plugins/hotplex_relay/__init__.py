"""Relay for HotPlex: one bot hands work to another (plugin ``relay``)."""
