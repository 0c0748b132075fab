"""`loanbot deploy --no-train` stops before touching the running Rasa or models/ when the
comparison refuses the candidate or the switch pause would reach the gateway time-out.

The comparison is replaced by a ready-made result (its rules are tested in test_compare.py,
the real switch in tests/system/test_model_deploy.py); nothing listens at the Rasa URL, so any
attempt to switch would fail the test with a connection error instead of exit code 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.trainer import compare
from bot.trainer.compare import Comparison, score
from tests.unit.trainer.test_deploy_helpers import fake_archive


def run_deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, result: Comparison,
               timeout: str) -> int:
    candidate_dir = tmp_path / "candidate"
    candidate_dir.mkdir()
    fake_archive(candidate_dir / "loanbot.tar.gz", "cand")
    monkeypatch.setattr(compare, "evaluate_pair", lambda current, candidate: result)
    monkeypatch.setattr("bot.trainer.deploy.RELEASES_DIR", tmp_path / "releases")
    return main(["deploy", "--no-train", "--candidate-dir", str(candidate_dir),
                 "--out", str(tmp_path / "reports"), "--gateway-timeout", timeout,
                 "--rasa-url", "http://127.0.0.1:9", "--rasa-token", "t"])


def good() -> Comparison:
    truth = ["complaint"] * 20
    return Comparison(sets={"held_out": (score(truth, truth), score(truth, truth))},
                      sensitive=["complaint"], load_seconds={"candidate": 4.0})


def test_refused_candidate_is_not_switched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    refused = good()
    refused.failures.append("held_out: recall of sensitive intent complaint drops")
    assert run_deploy(tmp_path, monkeypatch, refused, "30") == 1
    assert "candidate refused; the running model is unchanged" in capsys.readouterr().err
    assert not (tmp_path / "releases").exists()
    assert (tmp_path / "reports" / "compare" / "summary.md").is_file()


def test_slow_load_is_not_switched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run_deploy(tmp_path, monkeypatch, good(), "6") == 1
    assert "HANDOFF_RASA_TIMEOUT" in capsys.readouterr().err
    assert not (tmp_path / "releases").exists()


def test_unreachable_rasa_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert run_deploy(tmp_path, monkeypatch, good(), "30") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: http://127.0.0.1:9: GET /status")
    # staged for the switch, but models/loanbot.tar.gz is only replaced after a switch
    assert len(list((tmp_path / "releases").glob("*.tar.gz"))) == 1
