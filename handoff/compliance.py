"""Compliance check for agent messages (pure; config/compliance.yml).

Why server-side: a console can be bypassed, so the gateway checks every agent text in the
message path before the service stores or relays it. `block` rules refuse the message,
`warn` rules let it through and tell the agent. Matching runs on a normalised form
(Traditional → Simplified, full-width → half-width, lower case, no spaces or punctuation),
so spacing or script tricks do not slip past a rule.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from bot.text import normalise
from handoff.errors import ConfigError, HandoffError

Action = Literal["block", "warn"]
ACTIONS: tuple[Action, ...] = ("block", "warn")
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "config" / "compliance.yml"
ENV_FILE = "HANDOFF_COMPLIANCE_FILE"


class ComplianceBlocked(HandoffError):
    """An agent message hit a `block` rule: nothing was stored or sent."""

    code = "compliance_blocked"
    message_zh = "消息未发送：内容不符合合规要求"


def compact(text: str) -> str:
    """The form rules match on: normalised, lower case, letters/digits/Han/% only."""
    flat = normalise(text).lower()
    return "".join(
        ch for ch in flat
        if ch == "%" or unicodedata.category(ch)[0] in ("L", "N")
    )


@dataclass(frozen=True)
class Hit:
    rule_id: str
    action: Action
    reason: str
    matched: str  # the phrase or the matched text (normalised)

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule_id, "action": self.action, "reason": self.reason,
                "matched": self.matched}


@dataclass(frozen=True)
class Verdict:
    hits: tuple[Hit, ...] = ()

    @property
    def blocked(self) -> bool:
        return any(h.action == "block" for h in self.hits)

    @property
    def warnings(self) -> tuple[Hit, ...]:
        return tuple(h for h in self.hits if h.action == "warn")

    @property
    def reason(self) -> str:
        """The Chinese reasons of the blocking rules (or of all hits), one per rule."""
        chosen = [h for h in self.hits if h.action == "block"] or list(self.hits)
        seen: list[str] = []
        for hit in chosen:
            if hit.reason not in seen:
                seen.append(hit.reason)
        return "；".join(seen)


@dataclass(frozen=True)
class Rule:
    rule_id: str
    action: Action
    reason: str
    phrases: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = field(default=())

    def match(self, flat: str) -> str | None:
        for phrase in self.phrases:
            if phrase and phrase in flat:
                return phrase
        for pattern in self.patterns:
            found = pattern.search(flat)
            if found:
                return found.group(0)
        return None


@dataclass(frozen=True)
class Compliance:
    rules: tuple[Rule, ...]

    def check(self, text: str) -> Verdict:
        flat = compact(text)
        hits = []
        for rule in self.rules:
            matched = rule.match(flat)
            if matched is not None:
                hits.append(Hit(rule.rule_id, rule.action, rule.reason, matched))
        return Verdict(tuple(hits))

    def enforce(self, text: str) -> Verdict:
        """check(), raising ComplianceBlocked (reason in Chinese) on a block rule."""
        verdict = self.check(text)
        if verdict.blocked:
            raise ComplianceBlocked(
                f"blocked by {','.join(h.rule_id for h in verdict.hits if h.action == 'block')}",
                message_zh=f"消息未发送：{verdict.reason}",
            )
        return verdict

    @classmethod
    def from_mapping(cls, data: Any) -> Compliance:
        if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
            raise ConfigError("compliance config needs a `rules` list")
        return cls(tuple(_rule(item, i) for i, item in enumerate(data["rules"])))

    @classmethod
    def load(cls, path: str | Path | None = None) -> Compliance:
        """Load the rules (HANDOFF_COMPLIANCE_FILE, else config/compliance.yml)."""
        target = Path(path or os.environ.get(ENV_FILE) or DEFAULT_FILE)
        try:
            data = yaml.safe_load(target.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read compliance rules {target}: {exc}") from None
        return cls.from_mapping(data)


def _strings(value: Any, what: str) -> Iterable[str]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise ConfigError(f"{what} must be a list of strings")
    return [str(v) for v in value]


def _rule(item: Any, index: int) -> Rule:
    if not isinstance(item, Mapping):
        raise ConfigError(f"compliance rule {index} must be a mapping")
    rule_id = str(item.get("id") or f"rule{index}")
    action = item.get("action")
    reason = item.get("reason")
    if action not in ACTIONS:
        raise ConfigError(f"compliance rule {rule_id}: action must be block or warn")
    if not isinstance(reason, str) or not reason.strip():
        raise ConfigError(f"compliance rule {rule_id}: reason (Chinese) is required")
    phrases = tuple(p for p in (compact(s) for s in _strings(item.get("phrases"),
                                                             f"{rule_id}.phrases")) if p)
    try:
        patterns = tuple(re.compile(p) for p in _strings(item.get("patterns"),
                                                         f"{rule_id}.patterns"))
    except re.error as exc:
        raise ConfigError(f"compliance rule {rule_id}: bad pattern: {exc}") from None
    if not phrases and not patterns:
        raise ConfigError(f"compliance rule {rule_id} has no phrases or patterns")
    return Rule(rule_id, action, reason.strip(), phrases, patterns)
