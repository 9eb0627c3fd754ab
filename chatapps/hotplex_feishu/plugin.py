"""Entry point ``feishu``: the ``plugins.feishu`` config section, the Feishu chat adapter,
its card templates and a ``hotplex doctor`` check of the app's credentials.

Imports no lark-oapi: the SDK is imported only when the adapter starts.
"""

from __future__ import annotations

from pydantic import BaseModel

from hotplex import hookimpl
from hotplex.context import PluginContext
from hotplex.interfaces import ChatAdapter
from hotplex.records import (
    ChatAdapterSpec,
    CheckResult,
    ConfigSection,
    DoctorCheck,
    PluginManifest,
    Requirement,
    TemplateSpec,
)
from hotplex_feishu.settings import FeishuSettings

__all__ = ["FeishuSettings", "manifest"]

manifest = PluginManifest(
    name="feishu",
    description="Feishu/Lark chat adapter (long connection or webhook)",
    requires=(Requirement("lark_oapi", "pip install 'hotplex[feishu]'"),),
)


def make_adapter(ctx: PluginContext, config: BaseModel) -> ChatAdapter:
    from hotplex_feishu.adapter import FeishuAdapter

    assert isinstance(config, FeishuSettings)
    return FeishuAdapter(ctx, config)


async def check_credentials(ctx: PluginContext) -> CheckResult:
    """A tenant token and the bot's identity, fetched with the configured credentials."""
    config = ctx.plugin_config("feishu")
    if not isinstance(config, FeishuSettings) or not config.enabled:
        return CheckResult(True, "not enabled")
    if not (config.app_id and config.app_secret):
        return CheckResult(
            False, "app_id or app_secret missing", hint="set plugins.feishu.app_id and app_secret"
        )
    from hotplex_feishu.api import FeishuApi, FeishuApiError

    api = FeishuApi(
        config.app_id, config.app_secret.get_secret_value(), config.domain, timeout=10.0
    )
    hint = (
        "check plugins.feishu.app_id, app_secret and domain, and that the app has the bot "
        "capability (docs/feishu.md)"
    )
    try:
        await api.token()
        open_id = await api.bot_open_id()
    except FeishuApiError as exc:
        return CheckResult(False, str(exc), hint=hint)
    except Exception as exc:  # unreachable, TLS, timeout
        return CheckResult(
            False, f"cannot reach {api.domain}: {type(exc).__name__}: {exc}", hint=hint
        )
    return CheckResult(True, f"app {config.app_id} on {api.domain}: tenant token ok, bot {open_id}")


@hookimpl
def hotplex_add_config() -> ConfigSection:
    return ConfigSection(name="feishu", model=FeishuSettings, description=manifest.description)


@hookimpl
def hotplex_register_chat_adapters() -> list[ChatAdapterSpec]:
    return [ChatAdapterSpec(name="feishu", factory=make_adapter, description=manifest.description)]


@hookimpl
def hotplex_register_templates() -> list[TemplateSpec]:
    return [TemplateSpec(name="feishu", package="hotplex.templates", subdir="feishu")]


@hookimpl
def hotplex_doctor_checks() -> list[DoctorCheck]:
    return [DoctorCheck(name="feishu credentials", run=check_credentials)]
