"""Entry point ``cron``: registers the ``plugins.cron`` config section.

Imports no APScheduler: the scheduler is imported only when the plugin starts.
"""

from __future__ import annotations

from pydantic import Field

from hotplex import hookimpl
from hotplex.config import PluginSettings, UnattendedPolicy
from hotplex.records import ConfigSection, PluginManifest, Requirement

manifest = PluginManifest(
    name="cron",
    description="Scheduled agent tasks",
    requires=(Requirement("apscheduler", "pip install 'hotplex[cron]'"),),
)


class CronJob(PluginSettings):
    name: str = Field(description="Unique job name.")
    schedule: str = Field(description="Five-field cron expression, e.g. '0 9 * * 1-5'.")
    prompt: str = Field(description="What the agent is asked to do.")
    deliver_to: str | None = Field(None, description="Conversation address for the result.")
    timezone: str = Field("UTC", description="Time zone of the schedule.")
    policy: UnattendedPolicy = Field("deny", description="Tool approvals for unattended runs.")
    enabled: bool = Field(True, description="Paused jobs stay listed but do not run.")


class CronSettings(PluginSettings):
    jobs: tuple[CronJob, ...] = Field((), description="Jobs defined in the config file.")


@hookimpl
def hotplex_add_config() -> ConfigSection:
    return ConfigSection(name="cron", model=CronSettings, description=manifest.description)
