"""`loanbot inbox list|export` and `loanbot new-intent` as a trainer runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.cli import main
from handoff.service import HandoffService
from handoff.settings import Settings

UNRESOLVED = "抱歉，我没有理解您的意思。您可以换个说法，或选择下面的问题："


def test_inbox_list_export_and_marks(service: HandoffService, settings: Settings,
                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for identity in ("a", "b"):
        sid = service.open_session(None, identity).session.session_id
        service.record_borrower_message(sid, "能用微信还款吗")
        service.accept_bot_replies(sid, [{"text": UNRESOLVED}])
    db = ["--db-url", settings.db_url, "--no-predict"]

    assert main(["inbox", "list", *db]) == 0
    listing = capsys.readouterr().out
    assert "能用微信还款吗" in listing and "    2      2     0" in listing

    out = tmp_path / "batch.yml"
    assert main(["inbox", "export", *db, "--out", str(out), "--batch", "b-1"]) == 0
    assert "marked 1 as exported in batch b-1" in capsys.readouterr().out
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert data["nlu"][0]["intent"] == "nlu_fallback"
    assert "- 能用微信还款吗" in data["nlu"][0]["examples"]

    assert main(["inbox", "list", *db]) == 0
    assert capsys.readouterr().out.strip() == "inbox is empty"
    assert main(["inbox", "list", *db, "--all", "--json"]) == 0
    assert '"exported_batch": "b-1"' in capsys.readouterr().out


def test_new_intent_refusal_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-intent", "ask_rate", "--example", "x", "--response", "y"]) == 2
    assert "error: intent ask_rate already exists" in capsys.readouterr().err
