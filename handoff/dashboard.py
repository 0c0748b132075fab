"""Supervisor dashboard figures, computed from the store (read-only, pure functions).

Why here and not in handoff/store/repo.py: these are reporting queries over the audit tables
(sessions, transitions, messages, csat); they never write and the core never needs them.
Definitions (docs/ui.md):

- conversations: sessions created in the period; contained: those never handed to a human
  (episode 0); containment rate = contained / conversations.
- handoffs by reason: transitions into the queue from the bot in the period, by reason.
- waiting time: for each claim in the period, claim time − the session's latest entry into
  the queue before it. Handle time: claim → close / return to bot / transfer (the service's
  `handle_seconds`), for episodes that ended in the period.
- CSAT: ratings given in the period. Queue now: sessions waiting at `now` (any period).
- top unresolved messages: the borrower messages of the turns the bot could not resolve —
  the last `unresolved_limit` borrower messages before each `unresolved_turns` handoff.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from handoff.masking import mask_text
from handoff.store.schema import csat, messages, sessions, transitions

HANDOFF_EVENTS = ("handoff_requested", "bot_unavailable")
HANDLE_EVENTS = ("closed_resolved", "returned_to_bot", "transferred")
# Upper bounds (seconds) of the waiting / handle time buckets; the last bucket is open.
WAIT_BUCKETS: tuple[float, ...] = (30, 60, 180, 300, 600)
HANDLE_BUCKETS: tuple[float, ...] = (60, 180, 300, 600, 1200)
TOP_UNRESOLVED = 10


@dataclass(frozen=True)
class Distribution:
    """Count, mean, median, p90 and bucket counts of a list of durations (seconds)."""

    values: tuple[float, ...]
    bounds: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        ordered = sorted(self.values)
        count = len(ordered)
        buckets = [0] * (len(self.bounds) + 1)
        for value in ordered:
            index = next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))
            buckets[index] += 1
        return {
            "count": count,
            "sum": round(sum(ordered), 3),
            "average": round(sum(ordered) / count, 1) if count else None,
            "median": round(percentile(ordered, 0.5), 1) if count else None,
            "p90": round(percentile(ordered, 0.9), 1) if count else None,
            "buckets": [
                # The open last bucket has "le": null (JSON has no infinity).
                {"le": bound, "label": bucket_label(i, self.bounds), "count": buckets[i]}
                for i, bound in enumerate([*self.bounds, None])
            ],
        }


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = max(1, math.ceil(q * len(ordered)))
    return float(ordered[rank - 1])


def bucket_label(index: int, bounds: Sequence[float]) -> str:
    """Chinese label of a bucket, e.g. "1–3分钟"."""

    def human(seconds: float) -> str:
        return f"{int(seconds)}秒" if seconds < 60 else f"{int(seconds // 60)}分钟"

    if index == 0:
        return f"≤{human(bounds[0])}"
    if index == len(bounds):
        return f">{human(bounds[-1])}"
    return f"{human(bounds[index - 1])}–{human(bounds[index])}"


def handoff_reason(event: str, reason: str | None) -> str:
    """The reason key of a handoff transition (its stored reason starts with the key)."""
    if event == "bot_unavailable":
        return "bot_unavailable"
    return (reason or "unknown").split(" ", 1)[0] or "unknown"


def compute(conn: Connection, start: datetime, end: datetime, now: datetime,
            *, unresolved_limit: int = 3) -> dict[str, Any]:
    """All dashboard figures for [start, end), plus the queue at `now`."""
    created = sessions.c.created_at
    in_period = (created >= start) & (created < end)
    conversations = int(conn.execute(
        select(func.count()).select_from(sessions).where(in_period)).scalar_one())
    contained = int(conn.execute(
        select(func.count()).select_from(sessions).where(in_period, sessions.c.episode == 0)
    ).scalar_one())

    moved = conn.execute(
        select(transitions.c.session_id, transitions.c.event, transitions.c.to_state,
               transitions.c.reason, transitions.c.handle_seconds, transitions.c.created_at)
        .where(transitions.c.created_at < end)
        .order_by(transitions.c.created_at, transitions.c.id)
    ).all()
    by_reason: Counter[str] = Counter()
    waits: list[float] = []
    handles: list[float] = []
    unresolved_handoffs: list[tuple[str, datetime]] = []
    last_queued: dict[str, datetime] = {}
    for row in moved:
        period = row.created_at >= start
        if row.event == "claimed" and period and row.session_id in last_queued:
            waits.append((row.created_at - last_queued[row.session_id]).total_seconds())
        if row.to_state == "queued":
            last_queued[row.session_id] = row.created_at
        if not period:
            continue
        if row.event in HANDOFF_EVENTS:
            reason = handoff_reason(row.event, row.reason)
            by_reason[reason] += 1
            if reason == "unresolved_turns":
                unresolved_handoffs.append((row.session_id, row.created_at))
        if row.event in HANDLE_EVENTS and row.handle_seconds is not None:
            handles.append(float(row.handle_seconds))

    ratings = conn.execute(
        select(csat.c.score).where(csat.c.created_at >= start, csat.c.created_at < end)
    ).scalars().all()
    scores = Counter(int(s) for s in ratings)

    return {
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "generated_at": now.isoformat(),
        "conversations": conversations,
        "contained": contained,
        "handed_off": conversations - contained,
        "containment_rate": round(contained / conversations, 4) if conversations else None,
        "handoffs_by_reason": dict(by_reason.most_common()),
        "handoffs": sum(by_reason.values()),
        "queue_now": queue_now(conn, now),
        "waiting": Distribution(tuple(waits), WAIT_BUCKETS).to_dict(),
        "handle": Distribution(tuple(handles), HANDLE_BUCKETS).to_dict(),
        "csat": {
            "count": len(ratings),
            "average": round(sum(ratings) / len(ratings), 2) if ratings else None,
            "distribution": {str(score): scores.get(score, 0) for score in range(1, 6)},
        },
        "top_unresolved": top_unresolved(conn, unresolved_handoffs, unresolved_limit),
    }


def queue_now(conn: Connection, now: datetime) -> dict[str, Any]:
    """Sessions waiting right now, by skill, and the longest wait."""
    rows = conn.execute(
        select(sessions.c.skill, sessions.c.waiting_since).where(sessions.c.state == "queued")
    ).all()
    by_skill: Counter[str] = Counter(row.skill or "general" for row in rows)
    waits = [(now - row.waiting_since).total_seconds() for row in rows if row.waiting_since]
    return {
        "length": len(rows),
        "by_skill": dict(sorted(by_skill.items())),
        "longest_wait_seconds": round(max(waits), 1) if waits else 0,
    }


def top_unresolved(conn: Connection, handoffs: Sequence[tuple[str, datetime]],
                   limit: int) -> list[dict[str, Any]]:
    """The most frequent borrower texts among the turns before `unresolved_turns` handoffs.

    Texts are masked (personal numbers) and grouped after trimming; each entry has the text
    and how many unresolved turns it appeared in."""
    counts: Counter[str] = Counter()
    wanted: dict[str, list[datetime]] = defaultdict(list)
    for session_id, at in handoffs:
        wanted[session_id].append(at)
    for session_id, times in wanted.items():
        rows = conn.execute(
            select(messages.c.text, messages.c.created_at)
            .where(messages.c.session_id == session_id, messages.c.sender == "borrower")
            .order_by(messages.c.seq)
        ).all()
        for at in times:
            before = [r.text for r in rows if r.created_at <= at]
            for text in before[-limit:]:
                cleaned = " ".join(mask_text(text).split())[:200]
                if cleaned:
                    counts[cleaned] += 1
    return [{"text": text, "count": count}
            for text, count in counts.most_common(TOP_UNRESOLVED)]
