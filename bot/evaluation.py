"""Evaluate the NLU model on the held-out split and check it against the release floors.

Runs Rasa's own `rasa test nlu` (per-intent report, confusion-matrix PNG, error list, entity
reports) and reads its JSON reports back, so the numbers a trainer sees in reports/ are the
numbers the tests assert on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.training import ROOT, ModelPaths

HELD_OUT_DIR = ROOT / "tests" / "nlu"
HANDOFF_POLICY = ROOT / "config" / "handoff.yml"
ENTITY_EXTRACTOR = "LoanEntityExtractor"

INTENT_ACCURACY_FLOOR = 0.92
SENSITIVE_RECALL_FLOOR = 0.95
ENTITY_F1_FLOOR = 0.90


@dataclass
class EvaluationResult:
    """What the release floors are checked against."""

    intent_accuracy: float
    intent_recall: dict[str, float]
    entity_f1: float | None
    sensitive_intents: list[str]
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def sensitive_intents(policy_file: Path = HANDOFF_POLICY) -> list[str]:
    data = yaml.safe_load(policy_file.read_text(encoding="utf-8"))
    return list(data["sensitive_intents"])


def run_rasa_test_nlu(model: Path, out_dir: Path, held_out: Path = HELD_OUT_DIR) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rasa = Path(sys.executable).with_name("rasa")
    command = [
        str(rasa), "test", "nlu",
        "--nlu", str(held_out),
        "--model", str(model),
        "--out", str(out_dir),
    ]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    subprocess.run(command, cwd=ROOT, env=env, check=True)


def read_result(out_dir: Path, policy_file: Path = HANDOFF_POLICY) -> EvaluationResult:
    intents = json.loads((out_dir / "intent_report.json").read_text(encoding="utf-8"))
    recall = {
        name: float(scores["recall"])
        for name, scores in intents.items()
        if isinstance(scores, dict) and "recall" in scores and name not in {
            "macro avg", "weighted avg", "micro avg"}
    }
    entity_report = out_dir / f"{ENTITY_EXTRACTOR}_report.json"
    entity_f1 = None
    if entity_report.is_file():
        entities = json.loads(entity_report.read_text(encoding="utf-8"))
        avg = entities.get("micro avg") or entities.get("weighted avg")
        entity_f1 = float(avg["f1-score"]) if avg else None

    result = EvaluationResult(
        intent_accuracy=float(intents["accuracy"]),
        intent_recall=recall,
        entity_f1=entity_f1,
        sensitive_intents=sensitive_intents(policy_file),
    )
    if result.intent_accuracy < INTENT_ACCURACY_FLOOR:
        result.failures.append(
            f"intent accuracy {result.intent_accuracy:.3f} < {INTENT_ACCURACY_FLOOR}")
    for name in result.sensitive_intents:
        value = recall.get(name)
        if value is None:
            result.failures.append(f"sensitive intent {name} missing from the held-out split")
        elif value < SENSITIVE_RECALL_FLOOR:
            result.failures.append(f"recall of {name} {value:.3f} < {SENSITIVE_RECALL_FLOOR}")
    if entity_f1 is None:
        result.failures.append(f"no entity report from {ENTITY_EXTRACTOR}")
    elif entity_f1 < ENTITY_F1_FLOOR:
        result.failures.append(f"entity F1 {entity_f1:.3f} < {ENTITY_F1_FLOOR}")
    return result


def format_result(result: EvaluationResult) -> str:
    lines = [
        f"intent accuracy: {result.intent_accuracy:.3f} (floor {INTENT_ACCURACY_FLOOR})",
        f"entity F1 ({ENTITY_EXTRACTOR}): "
        + (f"{result.entity_f1:.3f}" if result.entity_f1 is not None else "n/a")
        + f" (floor {ENTITY_F1_FLOOR})",
        f"sensitive-intent recall (floor {SENSITIVE_RECALL_FLOOR}):",
    ]
    for name in result.sensitive_intents:
        value = result.intent_recall.get(name)
        lines.append(f"  {name}: " + (f"{value:.3f}" if value is not None else "missing"))
    lines.append("PASSED" if result.passed else "FAILED: " + "; ".join(result.failures))
    return "\n".join(lines)


def evaluate(out_dir: Path, model: Path | None = None) -> EvaluationResult:
    model = model or ModelPaths(ROOT / "models").model
    run_rasa_test_nlu(model, out_dir)
    return read_result(out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "reports"))
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)
    result = evaluate(Path(args.out) / "nlu", Path(args.model) if args.model else None)
    summary = format_result(result)
    (Path(args.out) / "nlu" / "summary.txt").write_text(summary + "\n", encoding="utf-8")
    print(summary)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
