"""``hotplex doctor`` checks the Feishu credentials with a tenant token (and the bot's
identity) against the fake Feishu."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hotplex.cli import main
from hotplex.testing.feishu import FakeFeishu


def doctor(
    tmp_path: Path, fake: FakeFeishu, secret: str, capsys: pytest.CaptureFixture[str]
) -> str:
    config = {
        "engine": {"data_dir": str(tmp_path / "data")},
        "plugins": {"feishu": {"enabled": True, "app_id": fake.app_id, "app_secret": secret,
                               "domain": fake.base_url}},
    }  # fmt: skip
    path = tmp_path / "hotplex.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit):
        main(["--config", str(path), "doctor"])
    output = capsys.readouterr().out.splitlines()
    found = [i for i, line in enumerate(output) if "feishu credentials" in line]
    assert found, output
    return "\n".join(output[found[0] : found[0] + 2])


def test_doctor_gets_a_tenant_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFeishu() as fake:
        line = doctor(tmp_path, fake, fake.app_secret, capsys)
        assert line.startswith("ok") and "tenant token ok" in line and fake.bot_open_id in line
        assert fake.calls_named("tenant_access_token.internal")


def test_doctor_fails_on_a_wrong_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFeishu() as fake:
        line = doctor(tmp_path, fake, "wrong-secret", capsys)
        assert "fail" in line.lower() and "tenant token" in line
        assert "fix:" in line and "app_secret" in line
        assert "wrong-secret" not in line
