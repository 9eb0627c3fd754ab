"""Webhooks for HotPlex: signed outbound events and inbound triggers (plugin ``webhook``)."""
