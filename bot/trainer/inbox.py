"""The trainer inbox: borrower messages the bot did not understand, or that led to a handoff.

Read from the gateway's own transcripts (handoff store), never from Rasa's tracker, so the
inbox sees exactly what borrowers typed and what the bot answered. A borrower message is an
inbox occurrence when
- the bot's next reply is one of its "did not understand" texts (`unresolved`,
  `unresolved_not_helpful`, `handoff_unresolved_turns` in bot/domain/texts.yml, in either
  script) — the turns the bot counted as unresolved (nlu_fallback / out_of_scope /
  not_helpful / no rule applied), or
- it is the last borrower message before a `handoff_requested` transition (any reason the bot
  gave: sensitive intent, unresolved turns, failed verification); `bot_unavailable` is an
  outage, not an NLU failure, and is left out.
Texts are masked (ID, card and phone numbers) before anything else sees them, then grouped by
a normalised form so "利率多少？" and "利率多少" count as one item.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.engine import Connection

from bot.text import normalise
from handoff.masking import mask_text
from handoff.states import SessionEvent
from handoff.store import Store
from handoff.store.schema import UTCDateTime, messages, transitions

ROOT = Path(__file__).resolve().parents[2]
TEXTS_FILE = ROOT / "bot" / "domain" / "texts.yml"
UNRESOLVED_RESPONSES = ("unresolved", "unresolved_not_helpful", "handoff_unresolved_turns")
SOURCE_UNRESOLVED = "unresolved"
SOURCE_HANDOFF = "handoff"

# Marks live in their own metadata so the gateway's schema stays untouched; the table is
# created on first use in the gateway database.
_marks_metadata = MetaData()
inbox_exports = Table(
    "trainer_inbox_exports",
    _marks_metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("key", String(1024), nullable=False),
    Column("batch", String(255), nullable=False),
    Column("exported_at", UTCDateTime, nullable=False),
)

_SPACES = re.compile(r"\s+")
_EDGE_PUNCTUATION = "。，,.!！?？~～…、；;：:\"'“”‘’ "

Prediction = tuple[str | None, float | None]
Predictor = Callable[[Sequence[str]], dict[str, Prediction]]


def normalised_key(text: str) -> str:
    """The grouping key: masked, `bot.text.normalise`d (Simplified, half-width, no emoji),
    lower-case, single spaces, no punctuation at either end."""
    key = normalise(mask_text(text)).lower()
    key = _SPACES.sub(" ", key).strip(_EDGE_PUNCTUATION)
    return key


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def unresolved_reply_texts(texts_file: Path = TEXTS_FILE) -> frozenset[str]:
    """The bot's "did not understand" texts, normalised (so Traditional replies match too)."""
    data = yaml.safe_load(texts_file.read_text(encoding="utf-8")) or {}
    responses = data.get("texts") or data.get("responses") or {}
    found: set[str] = set()
    for name in UNRESOLVED_RESPONSES:
        for variant in responses.get(name) or []:
            if isinstance(variant, dict) and isinstance(variant.get("text"), str):
                found.add(normalise(variant["text"]).strip())
    if not found:
        raise ValueError(f"{texts_file}: none of {UNRESOLVED_RESPONSES} has a text")
    return frozenset(found)


@dataclass(frozen=True)
class Occurrence:
    """One borrower message that belongs in the inbox."""

    session_id: str
    seq: int
    text: str  # masked
    source: str  # SOURCE_UNRESOLVED or SOURCE_HANDOFF
    created_at: datetime
    intent: str | None = None
    confidence: float | None = None
    handoff_reason: str | None = None


@dataclass
class InboxItem:
    """Occurrences grouped by normalised text."""

    key: str
    text: str  # the most recent masked example
    count: int = 0
    unresolved: int = 0
    handoffs: int = 0
    handoff_reasons: dict[str, int] = field(default_factory=dict)
    intent: str | None = None
    confidence: float | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    sessions: list[str] = field(default_factory=list)
    exported_batch: str | None = None

    @property
    def key_hash(self) -> str:
        return key_hash(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "key_hash": self.key_hash, "text": self.text, "count": self.count,
            "unresolved": self.unresolved, "handoffs": self.handoffs,
            "handoff_reasons": dict(self.handoff_reasons), "intent": self.intent,
            "confidence": self.confidence,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "sessions": len(self.sessions), "exported_batch": self.exported_batch,
        }


def collect(conn: Connection, reply_texts: frozenset[str] | None = None,
            since: datetime | None = None) -> list[Occurrence]:
    """Every inbox occurrence in the gateway store (optionally only messages after `since`)."""
    reply_texts = reply_texts if reply_texts is not None else unresolved_reply_texts()
    query = select(
        messages.c.session_id, messages.c.seq, messages.c.sender, messages.c.text,
        messages.c.intent, messages.c.confidence, messages.c.created_at,
    ).order_by(messages.c.session_id, messages.c.seq)
    if since is not None:
        query = query.where(messages.c.created_at >= since)
    handoffs: dict[str, list[tuple[datetime, str]]] = {}
    for row in conn.execute(
        select(transitions.c.session_id, transitions.c.created_at, transitions.c.reason)
        .where(transitions.c.event == SessionEvent.HANDOFF_REQUESTED.value)
        .order_by(transitions.c.id)
    ):
        reason = (row.reason or "").split(" ")[0] or "unknown"
        handoffs.setdefault(row.session_id, []).append((row.created_at, reason))

    found: list[Occurrence] = []
    by_session: dict[str, list[Any]] = {}
    for row in conn.execute(query):
        by_session.setdefault(row.session_id, []).append(row)
    for session_id, rows in by_session.items():
        borrower_rows = [r for r in rows if r.sender == "borrower"]
        taken: set[tuple[int, str]] = set()
        # unresolved: a "did not understand" bot reply before the next borrower message
        for index, row in enumerate(rows):
            if row.sender != "borrower":
                continue
            for later in rows[index + 1:]:
                if later.sender == "borrower":
                    break
                if later.sender == "bot" and normalise(later.text).strip() in reply_texts:
                    found.append(_occurrence(row, SOURCE_UNRESOLVED))
                    break
        # handoff: the borrower message the gateway stamped with the signal's intent when it
        # queued the session (the last one before the handoff, by seq); by time only when the
        # signal carried no intent. Timestamps alone can tie within one clock tick.
        for at, reason in handoffs.get(session_id, []):
            before = [r for r in borrower_rows if r.created_at <= at]
            stamped = [r for r in before if r.intent is not None]
            chosen = stamped[-1] if stamped else (before[-1] if before else None)
            if chosen is not None and (chosen.seq, reason) not in taken:
                taken.add((chosen.seq, reason))
                found.append(_occurrence(chosen, SOURCE_HANDOFF, reason))
    return found


def _occurrence(row: Any, source: str, reason: str | None = None) -> Occurrence:
    return Occurrence(
        session_id=row.session_id, seq=row.seq, text=mask_text(row.text), source=source,
        created_at=row.created_at, intent=row.intent, confidence=row.confidence,
        handoff_reason=reason,
    )


def group(occurrences: Iterable[Occurrence]) -> list[InboxItem]:
    """Group by normalised text; most frequent first, then most recent.

    A borrower message that was both unresolved and the handoff trigger counts once in
    `count` and once in each of `unresolved` / `handoffs`.
    """
    items: dict[str, InboxItem] = {}
    seen_messages: dict[str, set[tuple[str, int]]] = {}
    for occ in sorted(occurrences, key=lambda o: o.created_at):
        key = normalised_key(occ.text)
        if not key:
            continue
        item = items.get(key)
        if item is None:
            item = items[key] = InboxItem(key=key, text=occ.text, first_seen=occ.created_at)
            seen_messages[key] = set()
        message_id = (occ.session_id, occ.seq)
        if message_id not in seen_messages[key]:
            seen_messages[key].add(message_id)
            item.count += 1
        if occ.source == SOURCE_UNRESOLVED:
            item.unresolved += 1
        else:
            item.handoffs += 1
            reason = occ.handoff_reason or "unknown"
            item.handoff_reasons[reason] = item.handoff_reasons.get(reason, 0) + 1
        item.text, item.last_seen = occ.text, occ.created_at
        if occ.intent:  # the gateway stores the bot's intent for handoff messages
            item.intent, item.confidence = occ.intent, occ.confidence
        if occ.session_id not in item.sessions:
            item.sessions.append(occ.session_id)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return sorted(items.values(), key=lambda i: (-i.count, -(i.last_seen or epoch).timestamp()))


def predict_missing(items: Sequence[InboxItem], predictor: Predictor) -> None:
    """Fill intent/confidence for items the gateway has none for (the current model's guess)."""
    missing = [item for item in items if item.intent is None]
    if not missing:
        return
    predictions = predictor([item.text for item in missing])
    for item in missing:
        intent, confidence = predictions.get(item.text, (None, None))
        item.intent, item.confidence = intent, confidence


def _ensure_marks(store: Store) -> None:
    _marks_metadata.create_all(store.engine)


def load_marks(store: Store) -> dict[str, str]:
    _ensure_marks(store)
    with store.read() as conn:
        return {row.key_hash: row.batch for row in conn.execute(select(inbox_exports))}


def build_inbox(store: Store, *, include_exported: bool = False,
                predictor: Predictor | None = None, since: datetime | None = None,
                reply_texts: frozenset[str] | None = None) -> list[InboxItem]:
    """The inbox as trainers see it: grouped, marked, optionally with predictions filled in."""
    with store.read() as conn:
        items = group(collect(conn, reply_texts, since))
    marks = load_marks(store)
    for item in items:
        item.exported_batch = marks.get(item.key_hash)
    if not include_exported:
        items = [item for item in items if item.exported_batch is None]
    if predictor is not None:
        predict_missing(items, predictor)
    return items


def mark_exported(store: Store, items: Iterable[InboxItem], batch: str,
                  now: datetime | None = None) -> int:
    """Record that these items went out in `batch`; already-marked items keep their batch."""
    _ensure_marks(store)
    now = now or datetime.now(timezone.utc)
    marked = 0
    with store.write() as conn:
        existing = {row.key_hash for row in conn.execute(select(inbox_exports.c.key_hash))}
        for item in items:
            if item.key_hash in existing:
                continue
            conn.execute(inbox_exports.insert().values(
                key_hash=item.key_hash, key=item.key[:1024], batch=batch, exported_at=now))
            existing.add(item.key_hash)
            item.exported_batch = batch
            marked += 1
    return marked


def to_nlu_yaml(items: Sequence[InboxItem], batch: str,
                unknown_intent: str = "nlu_fallback") -> str:
    """Rasa NLU YAML (version 3.1) with each item under its suggested (predicted) intent.

    The trainer moves lines to the right intent (or deletes them); comments above each block
    say how often, how confident and why each text is here.
    """
    by_intent: dict[str, list[InboxItem]] = {}
    for item in items:
        by_intent.setdefault(item.intent or unknown_intent, []).append(item)
    lines = [
        f"# Trainer inbox batch {batch}: {len(items)} borrower message(s) the bot did not",
        "# understand or that led to a handoff. Each text sits under the intent the current",
        "# model predicted: move it to the right intent, or delete it, then save this file",
        "# under data/nlu/ (training) or tests/nlu/inbox/ (evaluation; see docs/trainers.md).",
        'version: "3.1"',
        "",
        "nlu:",
    ]
    for intent in sorted(by_intent):
        lines.append(f"- intent: {intent}")
        for item in by_intent[intent]:
            confidence = f"{item.confidence:.2f}" if item.confidence is not None else "n/a"
            lines.append(f"  # {item.key_hash[:12]}: seen {item.count}x, unresolved "
                         f"{item.unresolved}, handoffs {item.handoffs}, confidence {confidence}")
        lines.append("  examples: |")
        for item in by_intent[intent]:
            text = _SPACES.sub(" ", item.text).strip()
            lines.append(f"    - {text}")
    return "\n".join(lines) + "\n"


def format_table(items: Sequence[InboxItem]) -> str:
    """A plain-text listing for the terminal."""
    rows = ["count  unres  hand  intent                     conf   text"]
    for item in items:
        confidence = f"{item.confidence:.2f}" if item.confidence is not None else "  - "
        text = _SPACES.sub(" ", item.text).strip()
        rows.append(f"{item.count:5d}  {item.unresolved:5d}  {item.handoffs:4d}  "
                    f"{(item.intent or '-')[:26]:26s} {confidence:5s}  {text[:60]}")
    return "\n".join(rows)
