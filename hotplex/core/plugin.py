"""What the core plugin registers, hook by hook (the module ``BUILTIN_PLUGINS`` names)."""

from __future__ import annotations

from hotplex.hookspecs import hookimpl
from hotplex.records import (
    AgentToolSpec,
    ChatCommandSpec,
    DoctorCheck,
    MiddlewareSpec,
    ProviderSpec,
    ResourceSpec,
    SinkSpec,
    StorageSpec,
    TemplateSpec,
)

__all__: list[str] = []


@hookimpl
def hotplex_register_providers() -> list[ProviderSpec]:
    from hotplex.core.providers import core_providers

    return core_providers()


@hookimpl(tryfirst=True)
def hotplex_startup() -> list[ResourceSpec]:
    # core's come first, in the order core_resources gives
    from hotplex.core.startup import core_resources

    return core_resources()


@hookimpl(trylast=True)
def hotplex_register_storage() -> list[StorageSpec]:
    from hotplex.storage.plugin import storage_records

    return storage_records()


@hookimpl
def hotplex_register_sinks() -> list[SinkSpec]:
    from hotplex.storage.plugin import storage_sink_spec

    return [storage_sink_spec()]


@hookimpl
def hotplex_register_middleware() -> list[MiddlewareSpec]:
    from hotplex.chat.access import AccessMiddleware
    from hotplex.inbound import InboundLog
    from hotplex.waf.policy import make_waf_middleware

    return [
        MiddlewareSpec("inbound", InboundLog, order=100),
        MiddlewareSpec("access", AccessMiddleware, order=200),
        MiddlewareSpec("waf", make_waf_middleware, order=300),
    ]


@hookimpl
def hotplex_register_commands() -> list[ChatCommandSpec]:
    from hotplex.chat_commands import CORE_CHAT_COMMANDS

    return list(CORE_CHAT_COMMANDS)


@hookimpl
def hotplex_register_agent_tools() -> list[AgentToolSpec]:
    from hotplex.chat.send_file import send_file_tool

    return [send_file_tool()]


@hookimpl
def hotplex_register_templates() -> list[TemplateSpec]:
    return [TemplateSpec(name="core", package="hotplex.templates")]


@hookimpl
def hotplex_doctor_checks() -> list[DoctorCheck]:
    from hotplex.core.doctor import CORE_CHECKS

    return list(CORE_CHECKS)
