"""Feishu/Lark for HotPlex: streaming interactive cards with approval buttons (plugin
``feishu``)."""
