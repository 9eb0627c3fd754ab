"""Cron for HotPlex: scheduled agent tasks (plugin ``cron``)."""
