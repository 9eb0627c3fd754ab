"""The ``plugins.feishu`` section. Imports no lark-oapi."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from hotplex.config import ChatAccessSettings

__all__ = ["FeishuSettings"]


class FeishuSettings(ChatAccessSettings):
    """``plugins.feishu``; the access keys (dm_policy, group_policy, allow_*) are shared."""

    enabled: bool = Field(False, description="Start the Feishu adapter.")
    mode: Literal["ws", "webhook"] = Field(
        "ws",
        description="ws: the long connection (no public URL); webhook: Feishu posts to "
        "/feishu/events and /feishu/cards on the gateway's port.",
    )
    app_id: str | None = Field(None, description="cli_... app id.")
    app_secret: SecretStr | None = Field(None, description="App secret (use ${VAR}).")
    verification_token: SecretStr | None = Field(
        None, description="Webhook verification token (Events and callbacks > Encryption)."
    )
    encrypt_key: SecretStr | None = Field(
        None, description="Webhook encrypt key: bodies are decrypted and signatures checked."
    )
    domain: str = Field(
        "feishu", description="feishu (open.feishu.cn), lark (open.larksuite.com) or a URL."
    )
    session_scope: Literal["thread", "channel", "user"] = Field(
        "thread", description="One session per thread, chat (channel) or user."
    )
    min_update_interval: float = Field(
        0.5,
        ge=0.1,
        le=10.0,
        description="Seconds between two writes of one reply (card streaming updates included).",
    )
    timestamp_window: float = Field(
        300.0, gt=0, description="Webhook: refuse requests whose timestamp is further off (s)."
    )
    request_timeout: float = Field(10.0, gt=0, description="Seconds an Open API call may take.")

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if value.strip().lower() in ("feishu", "lark"):
            return value.strip().lower()
        if not value.startswith(("https://", "http://")):
            raise ValueError("use feishu, lark or a URL such as https://open.feishu.cn")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _secrets_when_enabled(self) -> FeishuSettings:
        if not self.enabled:
            return self
        if not (self.app_id and self.app_secret):
            raise ValueError("feishu is enabled but app_id and app_secret are required")
        if self.mode == "webhook" and not (self.verification_token or self.encrypt_key):
            raise ValueError(
                "feishu webhook mode needs verification_token or encrypt_key (better both): "
                "without them anyone could post events"
            )
        return self
