"""Deterministic cues for sensitive intents (pure; no Rasa).

A missed complaint or fraud report is the costliest NLU error a lender's bot can make, and the
statistical classifier is overconfident on short or unusual phrasings. These cue phrases,
kept in data/dictionaries/sensitive_cues.yml where trainers and compliance staff can read and
edit them, catch the unambiguous cases.

A cue is either a plain regular expression (it wins unless the classifier is near-certain of
another, non-sensitive intent: 还不上 also occurs in "还不上会上征信吗") or `{always: regex}`
(it wins over any prediction: a fraud cue inside a question the classifier is sure is
informational is still a fraud report).
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
class Cue:
    intent: str
    pattern: re.Pattern[str]
    always: bool = False


@dataclass(frozen=True)
class SensitiveCues:
    """Compiled cues, in priority order (earlier intents win)."""

    rules: tuple[Cue, ...]

    @classmethod
    def from_mapping(cls, raw: object) -> SensitiveCues:
        if not isinstance(raw, dict) or not raw:
            raise CueConfigError("sensitive cues must be a mapping of intent -> [regex, ...]")
        rules: list[Cue] = []
        for intent, patterns in raw.items():
            if not isinstance(intent, str) or not isinstance(patterns, list) or not patterns:
                raise CueConfigError(f"cues for {intent!r} must be a non-empty list")
            for entry in patterns:
                always = isinstance(entry, dict) and set(entry) == {"always"}
                pattern = entry["always"] if always else entry
                if not isinstance(pattern, str) or not pattern.strip():
                    raise CueConfigError(
                        f"cue for {intent!r} must be a regex or {{always: regex}}: {entry!r}")
                try:
                    rules.append(Cue(intent, re.compile(pattern), always))
                except re.error as error:
                    raise CueConfigError(f"bad cue {pattern!r} for {intent!r}: {error}") from None
        return cls(tuple(rules))

    @classmethod
    def from_file(cls, path: Path = DEFAULT_CUES_FILE) -> SensitiveCues:
        return cls.from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")))

    def to_mapping(self) -> dict[str, list[str | dict[str, str]]]:
        mapping: dict[str, list[str | dict[str, str]]] = {}
        for cue in self.rules:
            entry = {"always": cue.pattern.pattern} if cue.always else cue.pattern.pattern
            mapping.setdefault(cue.intent, []).append(entry)
        return mapping

    @property
    def intents(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(cue.intent for cue in self.rules))

    def find(self, text: str) -> Cue | None:
        """The first matching cue of the highest-priority intent (an `always` cue of that
        intent preferred), if any."""
        if not isinstance(text, str) or not text:
            return None
        compact = re.sub(r"\s+", "", text)
        for intent in self.intents:
            found = [c for c in self.rules if c.intent == intent and c.pattern.search(compact)]
            if found:
                return next((c for c in found if c.always), found[0])
        return None

    def match(self, text: str) -> str | None:
        """The highest-priority sensitive intent whose cue occurs in `text`, if any."""
        cue = self.find(text)
        return cue.intent if cue else None


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
    always: bool = False,
) -> bool:
    """Whether the cue's intent replaces the classifier's prediction.

    Between two sensitive intents the specific cue decides (both hand off; the cue routes the
    session to the right skill); otherwise the classifier keeps answers it is near-certain of.
    """
    if cue_intent is None or cue_intent == predicted:
        return False
    if predicted is None or predicted in WEAK_INTENTS or predicted in sensitive:
        return True
    if always:
        return True
    return confidence < CLASSIFIER_TRUST
