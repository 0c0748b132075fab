"""How many statements the per-message paths send to the database.

The gateway's CPU per message is mostly these statements (docs/benchmarks.md), so the counts
are pinned: a change that reads the same rows twice in one transaction shows up here, not
only as a slower benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from handoff.service import HandoffService
from handoff.store import Store, repo

from .conftest import PASSWORD
from .test_service import UNRESOLVED


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """Every statement SQLite is given (the driver's own trace, so statements that bypass
    SQLAlchemy's events count too), BEGIN and COMMIT included."""
    seen: list[str] = []

    def trace(statement: str) -> None:
        seen.append(" ".join(statement.split()))

    def traced(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.set_trace_callback(trace)

    event.listen(store.engine, "connect", traced)
    store.dispose()  # connections opened from here on are traced
    try:
        yield seen
    finally:
        event.remove(store.engine, "connect", traced)
        store.dispose()


def reads_of(seen: list[str], table: str) -> int:
    """SELECTs whose main table is `table` (the trace shows them with their values)."""
    return sum(1 for s in seen if s.startswith("SELECT") and f"FROM {table}" in s)


def test_a_bot_turn_is_two_short_transactions(service: HandoffService, store: Store) -> None:
    sid = service.open_session(None, "user-1").session.session_id
    with statements(store) as seen:
        result = service.record_borrower_message(sid, "利率多少")
        service.accept_bot_replies(sid, [{"text": "年化利率7.2%起"}, {"text": "还有问题吗？"}])
    assert result.route == "bot"
    commits = [s for s in seen if s == "COMMIT"]
    work = [s for s in seen if s not in ("COMMIT", "BEGIN IMMEDIATE")]
    # message: session row, seq bump (RETURNING), insert, pending turn;
    # replies: session row, settle the pending turn, then a bump and an insert per reply.
    assert len(commits) == 2 and seen.count("BEGIN IMMEDIATE") == 2
    assert len(work) == 4 + 2 + 2 * 2, work
    assert sum("RETURNING last_seq" in s for s in work) == 3
    with store.read() as conn:
        assert [m.seq for m in repo.messages_since(conn, sid, 0)] == [1, 2, 3]


def test_a_handoff_reads_the_queue_once(service: HandoffService, store: Store) -> None:
    for name, skills in (("gina", ["general"]), ("fred", ["general", "fraud"]),
                         ("hank", ["general"])):
        service.create_agent(name, name, PASSWORD, skills)
        service.agent_connected(name)
    waiting = []
    for i in range(3):
        sid = service.open_session(None, f"u-{i}").session.session_id
        service.record_borrower_message(sid, "我要人工")
        service.accept_bot_replies(sid, [UNRESOLVED])
        waiting.append(sid)
    service.claim("gina", waiting[0])

    sid = service.open_session(None, "u-new").session.session_id
    service.record_borrower_message(sid, "我还不上了")
    with statements(store) as seen:
        result = service.accept_bot_replies(sid, [{"text": "正在为您转接人工"}, UNRESOLVED])
    assert result.handed_off
    # Status line, callback offer and three agents' snapshots all come from one read of each.
    assert reads_of(seen, "agents") == 1
    assert sum(1 for s in seen if s.startswith("SELECT") and "FROM sessions" in s
               and "WHERE sessions.state = " in s) == 2  # queued rows, assigned rows
    assert reads_of(seen, "transitions") == 1  # typical handle time
    queue_events = [e for e in result.effects if getattr(e, "event", None) == "queue"]
    assert len(queue_events) == 3
    held = {e.agent_ids[0]: e.payload["held"] for e in queue_events}  # type: ignore[attr-defined]
    assert held == {"gina": [waiting[0]], "fred": [], "hank": []}
