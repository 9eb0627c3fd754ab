"""Entry point ``slack``: the ``plugins.slack`` config section, the Slack chat adapter and
its ``hotplex doctor`` checks.

Imports no Slack SDK: slack-bolt is imported only when the adapter starts.
"""

from __future__ import annotations

from pydantic import BaseModel

from hotplex import hookimpl
from hotplex.context import PluginContext
from hotplex.interfaces import ChatAdapter
from hotplex.records import (
    ChatAdapterSpec,
    ConfigSection,
    DoctorCheck,
    PluginManifest,
    Requirement,
)
from hotplex_slack.settings import SlackSettings

__all__ = ["SlackSettings", "manifest"]

manifest = PluginManifest(
    name="slack",
    description="Slack chat adapter (Socket Mode or HTTP events)",
    requires=(
        Requirement("slack_bolt", "pip install 'hotplex[slack]'"),
        Requirement("slack_sdk", "pip install 'hotplex[slack]'"),
    ),
)


def make_adapter(ctx: PluginContext, config: BaseModel) -> ChatAdapter:
    from hotplex_slack.adapter import SlackAdapter

    assert isinstance(config, SlackSettings)
    return SlackAdapter(ctx, config)


@hookimpl
def hotplex_add_config() -> ConfigSection:
    return ConfigSection(name="slack", model=SlackSettings, description=manifest.description)


@hookimpl
def hotplex_register_chat_adapters() -> list[ChatAdapterSpec]:
    return [ChatAdapterSpec("slack", make_adapter, manifest.description)]


@hookimpl
def hotplex_doctor_checks() -> list[DoctorCheck]:
    from hotplex_slack.doctor import CHECKS

    return list(CHECKS)
