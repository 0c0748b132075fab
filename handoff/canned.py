"""Canned replies for the agent console (config/canned_replies.yml).

Loaded once at start-up and checked against the compliance rules then, so a canned reply can
never be one the gateway would refuse when the agent sends it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from handoff.compliance import Compliance
from handoff.errors import ConfigError

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "config" / "canned_replies.yml"
ENV_FILE = "HANDOFF_CANNED_FILE"


@dataclass(frozen=True)
class CannedReply:
    shortcut: str
    title: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"shortcut": self.shortcut, "title": self.title, "text": self.text}


def load_canned(path: str | Path | None = None,
                compliance: Compliance | None = None) -> tuple[CannedReply, ...]:
    """Read the replies; a missing field, duplicate shortcut or blocked text is a ConfigError."""
    target = Path(path or os.environ.get(ENV_FILE) or DEFAULT_FILE)
    try:
        data = yaml.safe_load(target.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read canned replies {target}: {exc}") from None
    items = data.get("replies") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise ConfigError("canned replies need a `replies` list")
    replies: list[CannedReply] = []
    for index, item in enumerate(items):
        reply = _reply(item, index)
        if any(r.shortcut == reply.shortcut for r in replies):
            raise ConfigError(f"duplicate canned shortcut {reply.shortcut!r}")
        if compliance is not None and compliance.check(reply.text).blocked:
            raise ConfigError(f"canned reply {reply.shortcut!r} breaks a compliance rule")
        replies.append(reply)
    return tuple(replies)


def _reply(item: Any, index: int) -> CannedReply:
    if not isinstance(item, Mapping):
        raise ConfigError(f"canned reply {index} must be a mapping")
    values = {key: item.get(key) for key in ("shortcut", "title", "text")}
    for key, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"canned reply {index}: `{key}` must be non-empty text")
    return CannedReply(str(values["shortcut"]).strip(), str(values["title"]).strip(),
                       str(values["text"]).strip())
