"""Entry point ``slack``: registers the ``plugins.slack`` config section.

Imports no Slack SDK: slack-bolt is imported only when the adapter starts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from hotplex import hookimpl
from hotplex.config import ChatAccessSettings
from hotplex.records import ConfigSection, PluginManifest, Requirement

manifest = PluginManifest(
    name="slack",
    description="Slack chat adapter (Socket Mode or HTTP events)",
    requires=(
        Requirement("slack_bolt", "pip install 'hotplex[slack]'"),
        Requirement("slack_sdk", "pip install 'hotplex[slack]'"),
    ),
)


class SlackSettings(ChatAccessSettings):
    """``plugins.slack``; the access keys (dm_policy, group_policy, allow_*) are shared."""

    enabled: bool = Field(False, description="Start the Slack adapter.")
    mode: Literal["socket", "http"] = Field("socket", description="Socket Mode or HTTP events.")
    bot_token: SecretStr | None = Field(None, description="xoxb- bot token (use ${VAR}).")
    app_token: SecretStr | None = Field(None, description="xapp- app token for Socket Mode.")
    signing_secret: SecretStr | None = Field(None, description="Verifies HTTP requests.")
    api_base_url: str | None = Field(None, description="Web API base URL (tests, proxies).")
    session_scope: Literal["thread", "channel", "user"] = Field(
        "thread", description="One session per thread, channel or user."
    )

    @model_validator(mode="after")
    def _secrets_when_enabled(self) -> SlackSettings:
        if not self.enabled:
            return self
        missing = [] if self.bot_token else ["bot_token"]
        if self.mode == "socket" and not self.app_token:
            missing.append("app_token (Socket Mode)")
        if self.mode == "http" and not self.signing_secret:
            missing.append("signing_secret (HTTP mode)")
        if missing:
            raise ValueError(f"slack is enabled but {', '.join(missing)} is missing")
        return self


@hookimpl
def hotplex_add_config() -> ConfigSection:
    return ConfigSection(name="slack", model=SlackSettings, description=manifest.description)
