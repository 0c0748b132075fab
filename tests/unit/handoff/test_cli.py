"""The admin CLI against a temp store (run as a real subprocess once, in-process otherwise)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from handoff.cli import main

from .conftest import PASSWORD, POLICY_FILE, REPO


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"HANDOFF_VAR_DIR": str(tmp_path / "var"), "HANDOFF_POLICY_FILE": str(POLICY_FILE)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HANDOFF_DB_URL", raising=False)
    return env


def test_create_and_list(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    code = main(["create-agent", "--username", "wang", "--display-name", "小王",
                 "--skills", "general,fraud", "--password-stdin"],
                stdin=io.StringIO(PASSWORD + "\n"), stdout=out)
    assert code == 0 and "created wang (小王)" in out.getvalue()
    listed = io.StringIO()
    assert main(["list-agents"], stdout=listed) == 0
    assert listed.getvalue().split("\t")[:4] == ["wang", "小王", "agent", "fraud,general"]


@pytest.mark.parametrize(
    "extra",
    [["--skills", "astrology"], ["--skills", ""], ["--username", "X!"]],
)
def test_bad_input_exits_2(cli_env: dict[str, str], extra: list[str],
                           capsys: pytest.CaptureFixture[str]) -> None:
    args = ["create-agent", "--username", "wang", "--display-name", "小王",
            "--skills", "general", "--password-stdin", *extra]
    assert main(args, stdin=io.StringIO(PASSWORD + "\n"), stdout=io.StringIO()) == 2
    assert "error:" in capsys.readouterr().err


def test_short_password_exits_2(cli_env: dict[str, str]) -> None:
    args = ["create-agent", "--username", "wang", "--display-name", "小王",
            "--skills", "general", "--password-stdin"]
    assert main(args, stdin=io.StringIO("short\n"), stdout=io.StringIO()) == 2


def test_module_entry_point(cli_env: dict[str, str]) -> None:
    env = {**os.environ, **cli_env, "RASA_TELEMETRY_ENABLED": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "handoff.cli", "create-agent", "--username", "lisi",
         "--display-name", "小李", "--skills", "general", "--role", "supervisor",
         "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "role=supervisor" in done.stdout
