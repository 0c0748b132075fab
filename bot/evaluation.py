"""Evaluate the NLU model on the held-out splits and check them against the release floors.

Two splits, both never trained on (tests/unit/bot/test_nlu_splits.py checks for duplicates):
- `dev`   (tests/nlu): its errors have guided training-data work, so it flatters the model;
- `blind` (tests/nlu_blind): written before the tuning it measures, errors not inspected;
- `blind2` (tests/nlu_blind2): a second blind set, written before the next round of data work
  (docs/nlu.md, "Blind set 2"); reported, not gating. Its errors were inspected after its
  first evaluation (sensitive misses, docs/nlu.md), so it is now a development set too;
- `blind3` (tests/nlu_blind3): written by someone who had not read the training data or the
  other splits; reported, not gating.

Runs Rasa's own NLU evaluation, as `rasa test nlu` does, on every split with the model loaded
once (bot/rasa_nlu_test.py; per-intent report, confusion-matrix PNG, error list,
entity reports) and reads its JSON reports back, so the numbers a trainer sees in reports/ are
the numbers the tests assert on. Note that Rasa's evaluation undoes FallbackClassifier
predictions (`undo_fallback_prediction`): accuracy is the classifier's own top intent.
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
BLIND_DIR = ROOT / "tests" / "nlu_blind"
BLIND2_DIR = ROOT / "tests" / "nlu_blind2"
BLIND3_DIR = ROOT / "tests" / "nlu_blind3"
# split name -> (examples, report directory name under --out)
SPLITS: dict[str, tuple[Path, str]] = {
    "dev": (HELD_OUT_DIR, "nlu"),
    "blind": (BLIND_DIR, "nlu_blind"),
    "blind2": (BLIND2_DIR, "nlu_blind2"),
    "blind3": (BLIND3_DIR, "nlu_blind3"),
}
# The split whose floors decide the exit status of `make eval` (and CI): 20 examples per
# sensitive intent. The blind splits (10-12 per intent, so one miss is a recall of ~0.9) are
# reported with the same floors but do not gate; docs/nlu.md gives the measured numbers.
GATING_SPLIT = "dev"
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


def run_rasa_test_nlu(model: Path, splits: list[tuple[Path, Path]]) -> None:
    """Rasa's `rasa test nlu` on each (examples, report directory), the model loaded once
    (bot/rasa_nlu_test.py), in a process of its own as the CLI would be."""
    command = [sys.executable, "-m", "bot.rasa_nlu_test", "--model", str(model)]
    for held_out, out_dir in splits:
        command += [str(held_out), str(out_dir)]
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


def evaluate_splits(out_root: Path, model: Path | None = None) -> dict[str, EvaluationResult]:
    """Evaluate every split in SPLITS (one Rasa process); each writes its reports and
    summary.txt."""
    model = model or ModelPaths(ROOT / "models").model
    run_rasa_test_nlu(model, [(held_out, out_root / report_dir)
                              for held_out, report_dir in SPLITS.values()])
    results = {}
    for name, (_, report_dir) in SPLITS.items():
        out_dir = out_root / report_dir
        result = read_result(out_dir)
        (out_dir / "summary.txt").write_text(format_result(result) + "\n", encoding="utf-8")
        results[name] = result
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "reports"))
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)
    results = evaluate_splits(Path(args.out), Path(args.model) if args.model else None)
    for name, result in results.items():
        held_out, report_dir = SPLITS[name]
        role = "gates the exit status" if name == GATING_SPLIT else "reported, not gating"
        print(f"== {name} split ({held_out.relative_to(ROOT)}, {len(result.intent_recall)} "
              f"intents; reports in {args.out}/{report_dir}; {role})")
        print(format_result(result))
    return 0 if results[GATING_SPLIT].passed else 1


if __name__ == "__main__":
    sys.exit(main())
