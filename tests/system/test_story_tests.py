"""Rasa's own story tests (`tests/stories/`) against the trained model and the real action
server: every dialogue flow, including follow-ups, verification and each handoff path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stack import ROOT, BotStack, start_action_server

pytestmark = [pytest.mark.needs_model, pytest.mark.integration]


def test_every_story_passes(bot: BotStack, trained_model: Path, tmp_path: Path) -> None:
    # `rasa test` is plain Rasa: it calls an action server (on the stack's loan data)
    actions = start_action_server(tmp_path, bot.loan_db_url)
    try:
        _stories_pass(trained_model, tmp_path, actions.url)
    finally:
        actions.stop()


def _stories_pass(trained_model: Path, tmp_path: Path, action_url: str) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f'action_endpoint:\n  url: "{action_url}/webhook"\n')
    out = tmp_path / "results"
    rasa = Path(sys.executable).with_name("rasa")
    completed = subprocess.run(
        [str(rasa), "test", "core", "--stories", str(ROOT / "tests" / "stories"),
         "--model", str(trained_model), "--endpoints", str(endpoints), "--out", str(out),
         "--fail-on-prediction-errors"],
        cwd=ROOT, env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
        capture_output=True, text=True, timeout=600,
    )
    failed = out / "failed_test_stories.yml"
    details = failed.read_text(encoding="utf-8") if failed.is_file() else completed.stdout[-3000:]
    assert completed.returncode == 0, details
    assert "stories: []" in failed.read_text(encoding="utf-8") or not failed.read_text(
        encoding="utf-8").strip().count("- story:"), details
