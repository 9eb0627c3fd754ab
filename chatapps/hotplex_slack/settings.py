"""``plugins.slack``: the Slack adapter's settings (the access keys are core's)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from hotplex.config import ChatAccessSettings

__all__ = ["SlackSettings"]


class SlackSettings(ChatAccessSettings):
    """``plugins.slack``; the access keys (dm_policy, group_policy, allow_*) are shared."""

    enabled: bool = Field(False, description="Start the Slack adapter.")
    mode: Literal["socket", "http"] = Field("socket", description="Socket Mode or HTTP events.")
    bot_token: SecretStr | None = Field(None, description="xoxb- bot token (use ${VAR}).")
    app_token: SecretStr | None = Field(None, description="xapp- app token for Socket Mode.")
    signing_secret: SecretStr | None = Field(None, description="Verifies HTTP requests.")
    api_base_url: str | None = Field(
        None, description="Web API base URL, e.g. http://127.0.0.1:3000/api/ (tests, proxies)."
    )
    session_scope: Literal["thread", "channel", "user"] = Field(
        "thread", description="One session per thread, channel or user."
    )
    multi_bot: bool = Field(
        False,
        description="Channels shared with other bots: answer only messages that mention this "
        "bot (no thread following; a message mentioning someone else is not ours).",
    )
    streaming: bool = Field(
        True,
        description="Stream replies natively (chat.startStream); off, or refused by the "
        "workspace: chat.postMessage plus chat.update.",
    )
    stream_lifetime: float = Field(
        270.0, gt=0, description="Seconds before a native stream is ended (Slack: ~300)."
    )
    min_update_interval: float = Field(
        1.2, ge=0, description="Seconds between two writes of one reply (chat.update Tier 3)."
    )
    writes_per_minute: float = Field(
        80.0,
        gt=0,
        description="Writes a minute for all replies of the workspace together, in bursts of "
        "10 (chat.appendStream is Tier 4); half of it with chat.update (Tier 3).",
    )
    timeout: float = Field(10.0, gt=0, description="Seconds each Web API call may take.")
    ping_interval: float = Field(
        10.0, gt=0, description="Socket Mode ping interval; silent for 4x this: reconnect."
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
