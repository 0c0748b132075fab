"""When the bot hands a conversation to a human: pure functions over config/handoff.yml.

Kept free of Rasa imports so the decision is unit-tested on its own and the gateway's
configuration file stays the single source of truth for limits and sensitive intents.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from actions.settings import load_settings, policy_file, policy_file_setting

# Intents that mean "the bot did not help": each one is an unresolved turn.
UNRESOLVED_INTENTS = frozenset({"nlu_fallback", "out_of_scope", "not_helpful"})

REASON_SENSITIVE = "sensitive_intent"
REASON_UNRESOLVED = "unresolved_turns"
REASON_VERIFICATION = "verification_failed"


@dataclass(frozen=True)
class HandoffPolicy:
    """The parts of config/handoff.yml that the bot's decision needs."""

    unresolved_turn_limit: int
    verification_attempt_limit: int
    sensitive_intents: frozenset[str]


@dataclass(frozen=True)
class Decision:
    """What to do with one user turn.

    `unresolved_turns` is the counter value after this turn; `reason` is set only on handoff.
    """

    handoff: bool
    reason: str | None
    unresolved: bool
    unresolved_turns: int


def _limit(raw: dict[str, Any], key: str, path: Path) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{path}: '{key}' must be a positive integer, got {value!r}")
    return value


def parse_policy(raw: Any, path: Path = Path("<memory>")) -> HandoffPolicy:
    """Validate the loaded YAML so a typo fails at start-up, not mid-conversation."""
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    intents = raw.get("sensitive_intents") or []
    if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
        raise ValueError(f"{path}: 'sensitive_intents' must be a list of intent names")
    return HandoffPolicy(
        unresolved_turn_limit=_limit(raw, "unresolved_turn_limit", path),
        verification_attempt_limit=_limit(raw, "verification_attempt_limit", path),
        sensitive_intents=frozenset(intents),
    )


def load_policy(path: Path | None = None) -> HandoffPolicy:
    """Read the policy file (HANDOFF_POLICY_FILE, default config/handoff.yml)."""
    path = path or load_settings().handoff_policy_file
    with open(path, encoding="utf-8") as handle:
        return parse_policy(yaml.safe_load(handle), path)


@lru_cache(maxsize=8)
def _cached_policy(path: Path) -> HandoffPolicy:
    return load_policy(path)


@lru_cache(maxsize=8)
def _policy_for_setting(setting: str) -> HandoffPolicy:
    return _cached_policy(policy_file(setting))


def current_policy() -> HandoffPolicy:
    """The policy for the configured file, read once per process and path.

    Looked up by the setting's text, so each decision costs one environment lookup instead
    of resolving every setting and the path again (≈ 10 % of the actions' own time).
    """
    return _policy_for_setting(policy_file_setting())


def decide(
    intent: str | None, unresolved_turns: float | int | None, policy: HandoffPolicy | None = None
) -> Decision:
    """Decide for one turn: sensitive → hand off now; unresolved → count, hand off at the limit.

    Other intents leave the counter unchanged; the action that answers resets it to 0.
    """
    policy = policy or current_policy()
    count = max(0, int(unresolved_turns or 0))
    if intent in policy.sensitive_intents:
        return Decision(handoff=True, reason=REASON_SENSITIVE, unresolved=False,
                        unresolved_turns=count)
    if intent in UNRESOLVED_INTENTS:
        count += 1
        at_limit = count >= policy.unresolved_turn_limit
        return Decision(handoff=at_limit, reason=REASON_UNRESOLVED if at_limit else None,
                        unresolved=True, unresolved_turns=count)
    return Decision(handoff=False, reason=None, unresolved=False, unresolved_turns=count)


def verification_exhausted(
    failures: float | int | None, policy: HandoffPolicy | None = None
) -> bool:
    """True once the borrower has failed identity checks as often as the policy allows."""
    policy = policy or current_policy()
    return int(failures or 0) >= policy.verification_attempt_limit
