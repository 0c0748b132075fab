"""The soak's database counts catch what they claim to catch (bench/soak.py).

A store with one clean session and one with every fault planted: an acknowledged message
missing, a stored message never delivered, a bot turn never answered, a bot reply stored
twice, an event delivered twice, a bot message while a human held the session, a double claim.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.soak import Stats, count_from_db
from handoff.store import Store
from handoff.store.schema import messages, sessions, transitions

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def build(url: str, rows: list[tuple[str, int, str, str, int]],
          moves: list[tuple[str, str, str, int]]) -> None:
    store = Store(url)
    with store.write() as conn:
        for sid in sorted({r[0] for r in rows} | {m[0] for m in moves}):
            conn.execute(insert(sessions).values(id=sid, state="bot", created_at=T0,
                                                 updated_at=T0))
        for sid, seq, sender, text, t in rows:
            conn.execute(insert(messages).values(session_id=sid, seq=seq, episode=1,
                                                 sender=sender, text=text, created_at=at(t)))
        for sid, to_state, event, t in moves:
            conn.execute(insert(transitions).values(session_id=sid, from_state="x",
                                                    to_state=to_state, event=event,
                                                    actor="test", created_at=at(t)))
    store.dispose()


def event(seq: int, text: str) -> tuple[int, str]:
    return seq, f'{{"text": "{text}"}}'


def test_clean_store_counts_zero_and_planted_faults_are_all_found(tmp_path: Path) -> None:
    echo = "机器人收到："
    rows = [
        # clean: a bot turn, a handoff, an agent, a close
        ("clean", 1, "borrower", "借款问题0-0", 1), ("clean", 2, "bot", echo + "借款问题0-0", 1),
        ("clean", 3, "borrower", "转人工", 2), ("clean", 4, "bot", "正在为您转接", 3),
        ("clean", 5, "system", "人工客服为您服务", 4), ("clean", 6, "agent", "您好", 5),
        # faulty
        ("bad", 1, "borrower", "借款问题1-0", 1), ("bad", 2, "bot", echo + "借款问题1-0", 1),
        ("bad", 3, "borrower", "转人工", 2), ("bad", 4, "bot", "正在为您转接", 3),
        ("bad", 5, "system", "人工客服为您服务", 4),
        ("bad", 6, "bot", "机器人插话", 5),                    # bot while a human holds it
        ("bad", 7, "bot", echo + "借款问题1-0", 8),              # the same reply twice
        ("bad", 8, "borrower", "借款问题1-1", 9),               # never answered
    ]
    moves = [
        ("clean", "queued", "handoff_requested", 3), ("clean", "assigned", "claimed", 4),
        ("clean", "closed", "closed_resolved", 6),
        ("bad", "queued", "handoff_requested", 3), ("bad", "assigned", "claimed", 4),
        ("bad", "assigned", "claimed", 4),                       # claimed twice
        ("bad", "closed", "closed_resolved", 7),
    ]
    url = f"sqlite:///{tmp_path / 'soak.sqlite'}"
    build(url, rows, moves)
    stats = Stats()
    stats.acked += [("clean", 1, "borrower"), ("clean", 3, "borrower"), ("clean", 6, "agent"),
                    ("bad", 1, "borrower"), ("bad", 3, "borrower"),
                    ("bad", 9, "borrower")]               # acked, not stored
    stats.received["clean"] += [event(s, "x") for s in (2, 4, 5, 6)]
    stats.received["bad"] += [event(2, "a"), event(2, "a"),  # delivered twice
                              event(4, "b"), event(6, "c"), event(7, "d")]  # 5 never delivered
    figures: dict[str, Any] = count_from_db(url, stats)
    assert figures["lost_detail"] == {"acked_not_stored": 1, "stored_not_delivered": 1,
                                      "bot_turn_unanswered": 1}
    assert figures["duplicated_detail"] == {"stored_twice": 0, "bot_reply_twice": 1}
    assert figures["delivered_twice_same_seq"] == 1
    assert (figures["lost"], figures["duplicated"]) == (3, 1)
    assert figures["bot_in_human"] == 1
    assert figures["double_claims"] == 1
