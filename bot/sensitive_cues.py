"""Deterministic cues for sensitive intents (pure; no Rasa).

A missed complaint or fraud report is the costliest NLU error a lender's bot can make, and the
statistical classifier is overconfident on short or unusual phrasings. These cue phrases,
kept in data/dictionaries/sensitive_cues.yml where trainers and compliance staff can read and
edit them, catch the unambiguous cases whatever the classifier says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CUES_FILE = ROOT / "data" / "dictionaries" / "sensitive_cues.yml"


class CueConfigError(ValueError):
    """The cue file is malformed (a typo must fail training, not pass silently)."""


@dataclass(frozen=True)
class SensitiveCues:
    """Compiled cues, in priority order (earlier intents win)."""

    rules: tuple[tuple[str, re.Pattern[str]], ...]

    @classmethod
    def from_mapping(cls, raw: object) -> SensitiveCues:
        if not isinstance(raw, dict) or not raw:
            raise CueConfigError("sensitive cues must be a mapping of intent -> [regex, ...]")
        rules: list[tuple[str, re.Pattern[str]]] = []
        for intent, patterns in raw.items():
            if not isinstance(intent, str) or not isinstance(patterns, list) or not patterns:
                raise CueConfigError(f"cues for {intent!r} must be a non-empty list")
            for pattern in patterns:
                if not isinstance(pattern, str) or not pattern.strip():
                    raise CueConfigError(f"empty cue for {intent!r}")
                try:
                    rules.append((intent, re.compile(pattern)))
                except re.error as error:
                    raise CueConfigError(f"bad cue {pattern!r} for {intent!r}: {error}") from None
        return cls(tuple(rules))

    @classmethod
    def from_file(cls, path: Path = DEFAULT_CUES_FILE) -> SensitiveCues:
        return cls.from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")))

    def to_mapping(self) -> dict[str, list[str]]:
        mapping: dict[str, list[str]] = {}
        for intent, pattern in self.rules:
            mapping.setdefault(intent, []).append(pattern.pattern)
        return mapping

    @property
    def intents(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(intent for intent, _ in self.rules))

    def match(self, text: str) -> str | None:
        """The highest-priority sensitive intent whose cue occurs in `text`, if any."""
        if not isinstance(text, str) or not text:
            return None
        compact = re.sub(r"\s+", "", text)
        for intent in self.intents:
            for rule_intent, pattern in self.rules:
                if rule_intent == intent and pattern.search(compact):
                    return intent
        return None


# The classifier keeps its own answer only when it is at least this sure of it.
CLASSIFIER_TRUST = 0.97
# Intents that never outrank a sensitive cue, whatever the classifier's confidence: chit-chat
# and bare answers carry no competing meaning.
WEAK_INTENTS = frozenset({
    "greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "out_of_scope",
    "not_helpful", "inform", "provide_identity", "nlu_fallback",
})


def should_override(
    cue_intent: str | None,
    predicted: str | None,
    confidence: float,
    sensitive: frozenset[str] = frozenset(),
) -> bool:
    """Whether the cue's intent replaces the classifier's prediction.

    Between two sensitive intents the specific cue decides (both hand off; the cue routes the
    session to the right skill); otherwise the classifier keeps answers it is near-certain of.
    """
    if cue_intent is None or cue_intent == predicted:
        return False
    if predicted is None or predicted in WEAK_INTENTS or predicted in sensitive:
        return True
    return confidence < CLASSIFIER_TRUST
