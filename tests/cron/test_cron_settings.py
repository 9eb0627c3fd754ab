"""The section ``plugins.cron`` and its jobs: bad input gets a clear error at load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hotplex_cron import plugin
from hotplex_cron.settings import CronSettings

from hotplex.config import load_settings
from hotplex.errors import ConfigError
from hotplex.plugins import make_plugin_manager


def load(section: dict[str, object], tmp_path: Path) -> CronSettings:
    pm = make_plugin_manager(entry_points=False, environ={}, extra=[("cron", plugin)])
    raw = {"engine": {"data_dir": str(tmp_path)}, "plugins": {"cron": section}}
    settings = load_settings(
        None, text=yaml.safe_dump(raw), sections=pm.config_sections().values(), environ={}
    ).settings
    cron = settings.plugins["cron"]
    assert isinstance(cron, CronSettings)
    return cron


def job(**fields: object) -> dict[str, object]:
    return {"name": "j", "schedule": "every 1h", "prompt": "p", **fields}


def test_a_job_with_defaults_and_one_target(tmp_path: Path) -> None:
    cron = load({"jobs": [job(deliver_to="slack:T01/C02")]}, tmp_path)
    [one] = cron.jobs
    assert one.deliver_to == ("slack:T01/C02",)
    assert (one.session, one.misfire, one.policy, one.retries) == ("fresh", "once", "deny", 0)
    assert one.timeout == 1800.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Bad Name"}, "job name 'Bad Name'"),
        ({"schedule": "0 9 * *"}, "expected 5 fields"),
        ({"timezone": "Nowhere/City"}, "unknown time zone"),
        ({"deliver_to": ["slack:T01"]}, "expected platform:workspace/channel"),
        ({"work_dir": "relative/dir"}, "use an absolute path"),
        ({"session": "sometimes"}, "fresh"),
        ({"misfire": "maybe"}, "skip"),
        ({"retries": 11}, "less than or equal to 10"),
        ({"policy": {"allow_tools": "Bash"}}, "allow_tools"),
        ({"timeout": "soon"}, "not a duration"),
    ],
)
def test_bad_jobs_are_refused_with_the_reason(
    fields: dict[str, object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        load({"jobs": [job(**fields)]}, tmp_path)


def test_a_name_defined_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="job 'j' is defined twice"):
        load({"jobs": [job(), job()]}, tmp_path)
