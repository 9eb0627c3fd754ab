"""Entry point ``feishu``: registers the ``plugins.feishu`` config section.

Imports no lark-oapi: the SDK is imported only when the adapter starts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from hotplex import hookimpl
from hotplex.config import ChatAccessSettings
from hotplex.records import ConfigSection, PluginManifest, Requirement

manifest = PluginManifest(
    name="feishu",
    description="Feishu/Lark chat adapter (long connection or webhook)",
    requires=(Requirement("lark_oapi", "pip install 'hotplex[feishu]'"),),
)


class FeishuSettings(ChatAccessSettings):
    """``plugins.feishu``; the access keys (dm_policy, group_policy, allow_*) are shared."""

    enabled: bool = Field(False, description="Start the Feishu adapter.")
    mode: Literal["ws", "webhook"] = Field("ws", description="Long connection or webhook.")
    app_id: str | None = Field(None, description="cli_... app id.")
    app_secret: SecretStr | None = Field(None, description="App secret (use ${VAR}).")
    verification_token: SecretStr | None = Field(None, description="Webhook token.")
    encrypt_key: SecretStr | None = Field(None, description="Webhook encryption key.")
    domain: str = Field("https://open.feishu.cn", description="Open API base URL.")
    session_scope: Literal["thread", "channel", "user"] = Field(
        "thread", description="One session per thread, chat or user."
    )

    @model_validator(mode="after")
    def _secrets_when_enabled(self) -> FeishuSettings:
        if self.enabled and not (self.app_id and self.app_secret):
            raise ValueError("feishu is enabled but app_id and app_secret are required")
        return self


@hookimpl
def hotplex_add_config() -> ConfigSection:
    return ConfigSection(name="feishu", model=FeishuSettings, description=manifest.description)
