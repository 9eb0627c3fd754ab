"""Slack for HotPlex: channels on @mention and DMs, a session per thread (plugin ``slack``)."""
