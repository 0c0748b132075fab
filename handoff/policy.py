"""The handoff policy (config/handoff.yml) and the pure decisions built on it.

Loaded from the file shared with the bot's actions, so priorities and skills live in one
place and never in code.
"""

from __future__ import annotations

import threading
import time as _time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from handoff.errors import ConfigError, RateLimited
from handoff.model import HandoffSignal
from handoff.settings import RateLimit, ServiceHours

KNOWN_REASONS = ("unresolved_turns", "sensitive_intent", "verification_failed", "bot_unavailable")


@dataclass(frozen=True)
class Policy:
    unresolved_turn_limit: int
    verification_attempt_limit: int
    sensitive_intents: tuple[str, ...]
    priority_order: tuple[str, ...]
    default_skill: str
    skills: Mapping[str, str]

    @classmethod
    def load(cls, path: Path | str) -> Policy:
        """Read and validate the policy file; ConfigError names what is wrong."""
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read handoff policy {path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"handoff policy {path} is not valid YAML: {exc}") from None
        return cls.from_mapping(raw, source=str(path))

    @classmethod
    def from_mapping(cls, raw: Any, source: str = "<policy>") -> Policy:
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a mapping at the top level")

        def str_list(key: str) -> tuple[str, ...]:
            value = raw.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ConfigError(f"{source}: {key} must be a list of names")
            if len(set(value)) != len(value):
                raise ConfigError(f"{source}: {key} lists a name twice")
            return tuple(value)

        def positive(key: str) -> int:
            value = raw.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{source}: {key} must be a positive integer")
            return value

        default_skill = raw.get("default_skill")
        if not isinstance(default_skill, str) or not default_skill:
            raise ConfigError(f"{source}: default_skill must be a skill name")
        skills = raw.get("skills", {}) or {}
        if not isinstance(skills, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in skills.items()
        ):
            raise ConfigError(f"{source}: skills must map routing keys to skill names")
        return cls(
            unresolved_turn_limit=positive("unresolved_turn_limit"),
            verification_attempt_limit=positive("verification_attempt_limit"),
            sensitive_intents=str_list("sensitive_intents"),
            priority_order=str_list("priority_order"),
            default_skill=default_skill,
            skills=dict(skills),
        )

    def routing_key(self, signal: HandoffSignal) -> str:
        """The intent for sensitive_intent handoffs (when known), else the reason."""
        if signal.reason == "sensitive_intent" and signal.intent:
            return signal.intent
        return signal.reason

    def skill_for(self, routing_key: str) -> str:
        return self.skills.get(routing_key, self.default_skill)

    def priority_rank(self, routing_key: str) -> int:
        """0 = served first; keys not listed share the rank after the listed ones."""
        try:
            return self.priority_order.index(routing_key)
        except ValueError:
            return len(self.priority_order)

    def all_skills(self) -> frozenset[str]:
        return frozenset({self.default_skill, *self.skills.values()})


def parse_handoff_payload(custom: Any) -> HandoffSignal | None:
    """The HandoffSignal in a bot reply's `custom`, or None if it carries none.

    Lenient about optional fields (a malformed signal from the bot must still reach a human),
    strict about the reason being a string.
    """
    if not isinstance(custom, dict) or "handoff" not in custom:
        return None
    data = custom.get("handoff")
    if not isinstance(data, dict):
        data = {}
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason:
        reason = "unresolved_turns"
    intent = data.get("intent") if isinstance(data.get("intent"), str) else None
    confidence_raw = data.get("confidence")
    confidence = (
        float(confidence_raw)
        if isinstance(confidence_raw, (int, float)) and not isinstance(confidence_raw, bool)
        else None
    )
    turns_raw = data.get("unresolved_turns")
    turns = turns_raw if isinstance(turns_raw, int) and not isinstance(turns_raw, bool) else 0
    slots_raw = data.get("slots")
    slots: dict[str, Any] = slots_raw if isinstance(slots_raw, dict) else {}
    return HandoffSignal(
        reason=reason, intent=intent, confidence=confidence, unresolved_turns=turns,
        slots=dict(slots),
    )


def in_service_hours(now: datetime, hours: ServiceHours) -> bool:
    """Whether `now` (aware) falls inside the daily service window in its time zone."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local = now.astimezone(hours.tz).time()
    return hours.start <= local < hours.end


def callback_reason(now: datetime, hours: ServiceHours, agents_online: int) -> str | None:
    """Why a borrower should be offered a callback instead of waiting, or None.

    "outside_hours" wins over "no_agents" because it tells the borrower when to expect us.
    """
    if not in_service_hours(now, hours):
        return "outside_hours"
    if agents_online <= 0:
        return "no_agents"
    return None


class RateLimiter:
    """Sliding-window limit per key (a session or an agent); in memory, thread-safe.

    Per process on purpose: it protects this gateway from floods; it is not an account quota.
    """

    def __init__(self, limit: RateLimit, monotonic: Callable[[], float] = _time.monotonic):
        self._limit = limit
        self._monotonic = monotonic
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Count one event for `key`; raise RateLimited (counting nothing) when over."""
        now = self._monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self._limit.per_seconds:
                hits.popleft()
            if len(hits) >= self._limit.count:
                raise RateLimited(hits[0] + self._limit.per_seconds - now)
            hits.append(now)
            if len(self._hits) > 10_000:
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        horizon = now - self._limit.per_seconds
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= horizon]:
            del self._hits[key]
