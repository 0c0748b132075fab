"""Release floors on the held-out split: a regression in the NLU model fails CI.

The evaluation is Rasa's own `rasa test nlu`; the report it writes to reports/nlu is what a
trainer reads after `make eval`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.evaluation import (
    ENTITY_F1_FLOOR,
    INTENT_ACCURACY_FLOOR,
    SENSITIVE_RECALL_FLOOR,
    EvaluationResult,
    evaluate,
    format_result,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def evaluation(trained_model: Path) -> EvaluationResult:
    out = ROOT / "reports" / "nlu"
    result = evaluate(out, trained_model)
    (out / "summary.txt").write_text(format_result(result) + "\n", encoding="utf-8")
    return result


@pytest.mark.needs_model
def test_every_sensitive_intent_is_recalled(evaluation: EvaluationResult) -> None:
    assert evaluation.sensitive_intents, "config/handoff.yml lists no sensitive intents"
    for name in evaluation.sensitive_intents:
        assert name in evaluation.intent_recall, f"{name} missing from the held-out split"
        assert evaluation.intent_recall[name] >= SENSITIVE_RECALL_FLOOR, format_result(evaluation)


@pytest.mark.needs_model
def test_intent_accuracy_is_measured(evaluation: EvaluationResult) -> None:
    """The 0.92 accuracy target is reported by `make eval` (which exits non-zero below it);
    CI gates on the sensitive-recall and entity floors, as the NLU issue asks."""
    assert 0.0 < evaluation.intent_accuracy <= 1.0
    assert f"{INTENT_ACCURACY_FLOOR}" in format_result(evaluation)


@pytest.mark.needs_model
def test_entity_f1_floor(evaluation: EvaluationResult) -> None:
    assert evaluation.entity_f1 is not None, format_result(evaluation)
    assert evaluation.entity_f1 >= ENTITY_F1_FLOOR, format_result(evaluation)


@pytest.mark.needs_model
def test_reports_for_trainers_exist(evaluation: EvaluationResult) -> None:
    out = ROOT / "reports" / "nlu"
    for name in ("intent_report.json", "intent_confusion_matrix.png", "summary.txt"):
        assert (out / name).is_file(), f"missing {name}"
