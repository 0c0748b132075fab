"""Compare a candidate model with the current one before it may be promoted.

Both models parse the same texts: the held-out split (tests/nlu/) and the annotated inbox
items (tests/inbox/, borrowers' own words, see docs/trainers.md). The report gives per-intent
F1 for both and the delta, confusions the candidate makes that the current model did not, and
a confusion-matrix image per model. The candidate is refused when the recall of any sensitive
intent (config/handoff.yml) drops on either set, or when it misses the release floors of
bot/evaluation.py on the held-out split.

Models are loaded in this process (one at a time) rather than through `rasa test nlu`, so each
is loaded once for both sets and the parsing shows a tqdm bar.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.evaluation import INTENT_ACCURACY_FLOOR, SENSITIVE_RECALL_FLOOR, sensitive_intents
from bot.training import ROOT, ModelPaths

HELD_OUT_DIR = ROOT / "tests" / "nlu"
INBOX_DIR = ROOT / "tests" / "inbox"
CANDIDATE_DIR = ROOT / "models" / "candidate"
# Recall differences smaller than this are float noise, not a drop.
RECALL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Example:
    text: str
    intent: str


@dataclass
class SetScores:
    """One model on one evaluation set."""

    accuracy: float
    per_intent: dict[str, dict[str, float]]  # intent -> precision/recall/f1/support
    confusions: dict[tuple[str, str], int]  # (true, predicted) -> count, true != predicted
    labels: list[str]
    matrix: list[list[int]]


@dataclass
class Comparison:
    sets: dict[str, tuple[SetScores, SetScores]]  # set name -> (current, candidate)
    sensitive: list[str]
    failures: list[str] = field(default_factory=list)
    load_seconds: dict[str, float] = field(default_factory=dict)  # model label -> load time

    @property
    def promote(self) -> bool:
        return not self.failures


def load_examples(folder: Path) -> list[Example]:
    """Intent examples from every NLU YAML file under `folder` (entity markup removed)."""
    files = sorted(folder.rglob("*.yml")) if folder.is_dir() else []
    if not files:
        return []
    from rasa.shared.nlu.training_data.loading import load_data

    examples: list[Example] = []
    for path in files:
        data = load_data(str(path))
        examples.extend(
            Example(m.get("text"), m.get("intent")) for m in data.intent_examples
        )
    return examples


def score(truth: Sequence[str], predicted: Sequence[str]) -> SetScores:
    """Per-intent precision/recall/F1 (over the true intents) and the confusions."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    intents = sorted(set(truth))
    labels = sorted(set(truth) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=intents, zero_division=0
    )
    per_intent = {
        intent: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for intent, p, r, f, s in zip(intents, precision, recall, f1, support, strict=True)
    }
    confusions = Counter((t, p) for t, p in zip(truth, predicted, strict=True) if t != p)
    matrix = confusion_matrix(truth, predicted, labels=labels).tolist() if truth else []
    accuracy = sum(t == p for t, p in zip(truth, predicted, strict=True)) / max(1, len(truth))
    return SetScores(accuracy, per_intent, dict(confusions), labels, matrix)


def compare_scores(sets: dict[str, tuple[SetScores, SetScores]],
                   sensitive: Sequence[str]) -> Comparison:
    """Apply the promotion rules to already computed scores."""
    result = Comparison(sets=sets, sensitive=list(sensitive))
    for set_name, (current, candidate) in sets.items():
        for intent in sensitive:
            old = current.per_intent.get(intent)
            new = candidate.per_intent.get(intent)
            if old is None or new is None:
                continue
            if new["recall"] < old["recall"] - RECALL_TOLERANCE:
                result.failures.append(
                    f"{set_name}: recall of sensitive intent {intent} drops "
                    f"{old['recall']:.3f} -> {new['recall']:.3f}")
    held_out = sets.get("held_out")
    if held_out is not None:
        candidate = held_out[1]
        if candidate.accuracy < INTENT_ACCURACY_FLOOR:
            result.failures.append(
                f"held_out: intent accuracy {candidate.accuracy:.3f} < {INTENT_ACCURACY_FLOOR}")
        for intent in sensitive:
            scores = candidate.per_intent.get(intent)
            if scores is not None and scores["recall"] < SENSITIVE_RECALL_FLOOR:
                result.failures.append(f"held_out: recall of {intent} {scores['recall']:.3f} "
                                       f"< floor {SENSITIVE_RECALL_FLOOR}")
    return result


def quiet_rasa() -> None:
    """Rasa logs every parse at debug level through structlog; keep the terminal readable."""
    import logging

    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)


def predict(model: Path, texts: Sequence[str], label: str) -> tuple[list[str], float]:
    """The intent `model` predicts for each text, with a tqdm bar, and how many seconds
    loading the model took.

    As `rasa test nlu` does, an nlu_fallback prediction is undone to the intent underneath it,
    so the numbers (and the release floors) match the ones in reports/nlu.
    """
    from rasa.core.agent import Agent
    from rasa.nlu.classifiers.fallback_classifier import (
        is_fallback_classifier_prediction,
        undo_fallback_prediction,
    )
    from tqdm import tqdm

    quiet_rasa()

    print(f"==> loading {label} model {model}", flush=True)
    started = time.monotonic()
    agent = Agent.load(str(model))
    load_seconds = time.monotonic() - started

    async def run() -> list[str]:
        out: list[str] = []
        for text in tqdm(texts, desc=f"parsing ({label})", unit="msg"):
            parsed = await agent.parse_message(text)
            if is_fallback_classifier_prediction(parsed):
                parsed = undo_fallback_prediction(parsed)
            out.append(str((parsed.get("intent") or {}).get("name") or "None"))
        return out

    predictions = asyncio.run(run())
    return predictions, load_seconds


def evaluate_pair(current: Path, candidate: Path, held_out: Path = HELD_OUT_DIR,
                  inbox: Path = INBOX_DIR) -> Comparison:
    sets = {name: load_examples(folder)
            for name, folder in (("held_out", held_out), ("inbox", inbox))}
    sets = {name: examples for name, examples in sets.items() if examples}
    texts = [e.text for examples in sets.values() for e in examples]
    predictions: dict[str, list[str]] = {}
    load_seconds: dict[str, float] = {}
    for label, path in (("current", current), ("candidate", candidate)):
        predictions[label], load_seconds[label] = predict(path, texts, label)
    scored: dict[str, tuple[SetScores, SetScores]] = {}
    start = 0
    for name, examples in sets.items():
        truth = [e.intent for e in examples]
        end = start + len(examples)
        scored[name] = (score(truth, predictions["current"][start:end]),
                        score(truth, predictions["candidate"][start:end]))
        start = end
    result = compare_scores(scored, sensitive_intents())
    result.load_seconds = load_seconds
    return result


def render_matrix(scores: SetScores, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(6.0, 0.45 * len(scores.labels))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(scores.matrix, cmap="Blues")
    ax.set_xticks(range(len(scores.labels)), scores.labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(scores.labels)), scores.labels, fontsize=8)
    for i, row in enumerate(scores.matrix):
        for j, value in enumerate(row):
            if value:
                ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                        color="white" if i == j else "crimson")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: Comparison, out_dir: Path) -> str:
    """Markdown summary + JSON + confusion-matrix PNGs under `out_dir`; returns the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Candidate vs current model", ""]
    data: dict[str, Any] = {"promote": result.promote, "failures": result.failures, "sets": {}}
    for set_name, (current, candidate) in result.sets.items():
        lines += [f"## {set_name}: accuracy {current.accuracy:.3f} -> {candidate.accuracy:.3f}",
                  "", "| intent | F1 current | F1 candidate | delta | recall cur -> cand |",
                  "|---|---|---|---|---|"]
        deltas: dict[str, float] = {}
        for intent in sorted(set(current.per_intent) | set(candidate.per_intent)):
            old = current.per_intent.get(intent, {})
            new = candidate.per_intent.get(intent, {})
            delta = new.get("f1", 0.0) - old.get("f1", 0.0)
            deltas[intent] = delta
            mark = " (sensitive)" if intent in result.sensitive else ""
            lines.append(f"| {intent}{mark} | {old.get('f1', 0):.3f} | {new.get('f1', 0):.3f} "
                         f"| {delta:+.3f} | {old.get('recall', 0):.3f} -> "
                         f"{new.get('recall', 0):.3f} |")
        new_confusions = {
            pair: count for pair, count in candidate.confusions.items()
            if count > current.confusions.get(pair, 0)
        }
        lines += ["", "New or grown confusions (true -> predicted: current, candidate):"]
        lines += [f"- {t} -> {p}: {current.confusions.get((t, p), 0)}, {count}"
                  for (t, p), count in sorted(new_confusions.items())] or ["- none"]
        lines.append("")
        for label, scores in (("current", current), ("candidate", candidate)):
            render_matrix(scores, f"{set_name} ({label})",
                          out_dir / f"confusion_{set_name}_{label}.png")
        data["sets"][set_name] = {
            "accuracy": {"current": current.accuracy, "candidate": candidate.accuracy},
            "f1_delta": deltas,
            "current": current.per_intent, "candidate": candidate.per_intent,
            "new_confusions": [{"true": t, "predicted": p, "current": current.confusions.get(
                (t, p), 0), "candidate": c} for (t, p), c in sorted(new_confusions.items())],
        }
    lines.append("PROMOTE" if result.promote else "REFUSED: " + "; ".join(result.failures))
    summary = "\n".join(lines) + "\n"
    (out_dir / "summary.md").write_text(summary, encoding="utf-8")
    (out_dir / "comparison.json").write_text(
        json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--current", default=str(ModelPaths(ROOT / "models").model))
    parser.add_argument("--candidate", default=str(ModelPaths(CANDIDATE_DIR).model))
    parser.add_argument("--out", default=str(ROOT / "reports"))
    parser.add_argument("--held-out", default=str(HELD_OUT_DIR))
    parser.add_argument("--inbox", default=str(INBOX_DIR), help="annotated inbox items")
    parser.add_argument("--if-candidate", action="store_true",
                        help="exit 0 with a note when there is no candidate model (make eval)")
    args = parser.parse_args(argv)
    candidate, current = Path(args.candidate), Path(args.current)
    if not candidate.is_file():
        if args.if_candidate:
            print(f"==> no candidate model at {candidate}: nothing to compare "
                  "(`loanbot train-candidate` makes one)")
            return 0
        print(f"no candidate model at {candidate}", file=sys.stderr)
        return 2
    result = evaluate_pair(current, candidate, Path(args.held_out), Path(args.inbox))
    summary = write_report(result, Path(args.out) / "compare")
    print("model load seconds: " + ", ".join(
        f"{label} {seconds:.1f}" for label, seconds in result.load_seconds.items()))
    print(summary)
    return 0 if result.promote else 1


if __name__ == "__main__":
    sys.exit(main())
