"""Promotion rules of the candidate/current comparison, on hand-made predictions, and the
report files (F1 deltas, new confusions, confusion-matrix PNGs)."""

from __future__ import annotations

import json
from pathlib import Path

from bot.trainer.compare import compare_scores, score, write_report

SENSITIVE = ["complaint", "report_fraud"]


def scores(truth: list[str], current: list[str], candidate: list[str]):  # type: ignore[no-untyped-def]
    return score(truth, current), score(truth, candidate)


TRUTH = ["complaint"] * 20 + ["report_fraud"] * 20 + ["ask_rate"] * 20


def test_better_candidate_is_promoted(tmp_path: Path) -> None:
    current = ["complaint"] * 20 + ["report_fraud"] * 20 + ["ask_rate"] * 18 + ["greet"] * 2
    candidate = list(TRUTH)
    result = compare_scores({"held_out": scores(TRUTH, current, candidate)}, SENSITIVE)
    assert result.promote, result.failures
    summary = write_report(result, tmp_path)
    assert summary.rstrip().endswith("PROMOTE")
    data = json.loads((tmp_path / "comparison.json").read_text(encoding="utf-8"))
    assert data["sets"]["held_out"]["f1_delta"]["ask_rate"] > 0
    assert (tmp_path / "confusion_held_out_candidate.png").stat().st_size > 1000


def test_sensitive_recall_drop_is_refused_even_when_accuracy_rises(tmp_path: Path) -> None:
    current = ["complaint"] * 20 + ["report_fraud"] * 20 + ["greet"] * 10 + ["ask_rate"] * 10
    candidate = (["complaint"] * 20 + ["report_fraud"] * 19 + ["ask_overdue"]
                 + ["ask_rate"] * 20)
    held_out = scores(TRUTH, current, candidate)
    assert held_out[1].accuracy > held_out[0].accuracy
    result = compare_scores({"held_out": held_out}, SENSITIVE)
    assert not result.promote
    assert any("report_fraud drops 1.000 -> 0.950" in f for f in result.failures)
    summary = write_report(result, tmp_path)
    assert "- report_fraud -> ask_overdue: 0, 1" in summary  # a new confusion
    assert "REFUSED" in summary


def test_drop_on_the_inbox_set_alone_is_refused() -> None:
    truth = ["complaint"] * 4
    result = compare_scores({
        "held_out": scores(TRUTH, TRUTH, TRUTH),
        "inbox": scores(truth, ["complaint"] * 4, ["complaint"] * 3 + ["nlu_fallback"]),
    }, SENSITIVE)
    assert result.failures == ["inbox: recall of sensitive intent complaint drops 1.000 -> 0.750"]


def test_floors_apply_to_the_candidate() -> None:
    bad = ["complaint"] * 20 + ["report_fraud"] * 20 + ["greet"] * 20
    result = compare_scores({"held_out": scores(TRUTH, bad, bad)}, SENSITIVE)
    assert any("intent accuracy" in f for f in result.failures)
