"""Keep each conversation's live tracker between turns instead of rebuilding it from SQL.

Rasa's `SQLTrackerStore` rebuilds the tracker on every turn: it reads every event since the
latest session start, `json.loads` each, and replays them all through
`DialogueStateTracker.from_dict`; on save it counts the stored events again (a sub-query) to
find which are new, and inserts them one ORM object at a time. With conversations of a few
dozen events that is a large share of a turn's CPU (docs/benchmarks.md).

This patch keeps the tracker object a turn saved and hands the same object to the next turn,
after one indexed query proves the database has not moved on (`max(id)` of the sender's
events is still the one this process wrote last). The database stays the record: every
event is inserted, in the same rows Rasa writes (same columns, same JSON), in the same
transaction as before; only the re-reading is skipped.

Rules that keep it exact:

- **Checked out, not shared.** `retrieve` takes the tracker out of the cache; only `save` of
  that very object puts it back. A turn that fails before saving leaves nothing behind, so
  the next turn rebuilds from the database, as plain Rasa would.
- **The database wins.** Any event written by someone else (another Rasa process after a
  re-route, a restart, a manual fix) changes `max(id)`; the cached tracker is dropped.
- **Earlier sessions are not carried.** Rasa's SQL store returns only the latest session; a
  tracker holding an earlier session's conversation is not cached, so the next read trims as
  Rasa does (a new conversation's opening `action_listen`/`action_session_start` may stay:
  predictions start at the session start either way).
- **Bounded.** At most `LOANBOT_TRACKER_CACHE_SIZE` (default 2000) trackers, least recently
  used first out; trackers with a bounded event history are never cached.

On SQLite the turn's insert and the `max(id)` query run straight on the driver, compiled once
by SQLAlchemy (`handoff.store.prepared`, which the gateway's store uses for the same reason):
SQLAlchemy's bookkeeping around those few statements (its Transaction objects, result set-up
and compile-cache lookups) cost several times the SQL itself. The SQL, the values and the
exception classes are SQLAlchemy's; other databases go through `Connection.execute`.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

CACHE_SIZE_ENV = "LOANBOT_TRACKER_CACHE_SIZE"
DEFAULT_CACHE_SIZE = 2000


@dataclass
class Entry:
    """A tracker object (None: a conversation with nothing stored yet), how many of its
    events are stored, and the sender's last row id when they were."""

    tracker: Any
    persisted: int
    last_id: int | None


class TrackerCache:
    """Trackers that may be handed out (`idle`) and the ones a turn holds (`out`).

    A tracker is handed out by `retrieve` (leaving `idle`) and comes back by `save` of that
    very object; a turn that never saves leaves it in `out` only, so the next turn reads the
    database. The same turn may save several times: the object stays recognised.
    """

    def __init__(self, size: int) -> None:
        self.size = max(0, size)
        self._idle: OrderedDict[str, Entry] = OrderedDict()
        self._out: OrderedDict[str, Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def check_out(self, sender_id: str) -> Entry | None:
        return self._idle.pop(sender_id, None)

    def lend(self, sender_id: str, entry: Entry) -> None:
        """Remember which object a turn got, so its saves can be recognised."""
        self._out[sender_id] = entry
        self._out.move_to_end(sender_id)
        while len(self._out) > max(self.size, 1):  # turns that never saved (failed)
            self._out.popitem(last=False)

    def returned(self, sender_id: str, tracker: Any) -> Entry | None:
        """The lent entry if `tracker` is the object lent for this sender (or the sender had
        nothing stored when the turn began)."""
        entry = self._out.get(sender_id)
        if entry is None or (entry.tracker is not None and entry.tracker is not tracker):
            return None
        return entry

    def check_in(self, sender_id: str, entry: Entry) -> None:
        self.lend(sender_id, entry)
        if self.size == 0:
            return
        self._idle[sender_id] = entry
        self._idle.move_to_end(sender_id)
        while len(self._idle) > self.size:
            self._idle.popitem(last=False)

    def forget(self, sender_id: str) -> None:
        self._idle.pop(sender_id, None)
        self._out.pop(sender_id, None)

    def __len__(self) -> int:
        return len(self._idle)


def cache_size(environ: Any = None) -> int:
    raw = (environ if environ is not None else os.environ).get(CACHE_SIZE_ENV, "")
    try:
        return int(raw) if raw.strip() else DEFAULT_CACHE_SIZE
    except ValueError as exc:
        raise ValueError(f"{CACHE_SIZE_ENV} must be an integer, got {raw!r}") from exc


EVENT_COLUMNS = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")


def event_row(sender_id: str, event: Any) -> dict[str, Any]:
    """The row Rasa's SQLTrackerStore.save writes for one event (same columns, same JSON)."""
    from rasa.shared.nlu.constants import INTENT_NAME_KEY

    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }


def _cacheable(tracker: Any) -> bool:
    """Whether the live object may stand in for what Rasa's SQL read would rebuild.

    Rasa reads back only the latest session. Events before a session start are harmless
    when nothing was said before it (a new conversation opens with `action_listen`,
    `action_session_start`): predictions start at the session start either way. A tracker
    that carries an earlier session's conversation is reread, trimmed, as Rasa does.
    """
    from rasa.shared.core.events import BotUttered, SessionStarted, UserUttered

    events = tracker.events
    if getattr(events, "maxlen", None) is not None:
        return False
    said = False
    for event in events:
        if isinstance(event, SessionStarted) and said:
            return False
        if isinstance(event, (UserUttered, BotUttered)):
            said = True
    return True


@contextmanager
def _transaction(conn: Any) -> Iterator[None]:
    """One write transaction: on SQLite begun implicitly by the driver at the first insert
    and committed on it (SQLAlchemy's own Transaction would begin the same way); elsewhere
    SQLAlchemy's."""
    if conn.dialect.name != "sqlite":
        with conn.begin():
            yield
        return
    from handoff.store.engine import on_driver

    raw = conn.connection.dbapi_connection
    try:
        yield
        on_driver(conn, raw.commit)  # its errors raised as SQLAlchemy's commit raises them
    except BaseException:
        raw.rollback()
        raise


def install(cache: TrackerCache | None = None) -> TrackerCache:
    """Patch SQLTrackerStore.retrieve/save in this process; returns the cache (for tests)."""
    import sqlalchemy as sa
    from rasa.core.tracker_store import SQLTrackerStore

    from handoff.store.prepared import Prepared

    cache = cache if cache is not None else TrackerCache(cache_size())
    original_retrieve = SQLTrackerStore.retrieve
    original_save = SQLTrackerStore.save
    table = SQLTrackerStore.SQLEvent.__table__
    last_id_of = Prepared(sa.select(sa.func.max(table.c.id).label("last_id")).where(
        table.c.sender_id == sa.bindparam("sender_id")))
    insert_event = Prepared(table.insert(), column_keys=list(EVENT_COLUMNS))

    def last_id(conn: Any, sender_id: str) -> int | None:
        row = last_id_of.first(conn, {"sender_id": sender_id})
        value = row[0] if row is not None else None
        return int(value) if value is not None else None

    async def retrieve(self: Any, sender_id: str) -> Any:
        entry = cache.check_out(sender_id)
        with self.engine.connect() as conn:
            stored_last = last_id(conn, sender_id)
        if entry is not None and entry.last_id == stored_last:
            cache.hits += 1
        elif stored_last is None:
            # No rows: Rasa's read would find nothing either. A new conversation, whose
            # first save stores every event.
            cache.misses += 1
            cache.lend(sender_id, Entry(None, 0, None))
            return None
        else:
            cache.misses += 1
            tracker = await original_retrieve(self, sender_id)
            if tracker is None:
                return None
            # Rasa's rows since the latest session start, one per event, in order.
            entry = Entry(tracker, len(tracker.events), stored_last)
        cache.lend(sender_id, entry)
        return entry.tracker

    async def save(self: Any, tracker: Any) -> None:
        sender_id = tracker.sender_id
        entry = cache.returned(sender_id, tracker)
        events = list(tracker.events)
        if entry is None:
            # A tracker this cache did not lend (a fallback read, a bounded history): Rasa's
            # own save, after which the database holds every event the tracker holds.
            await original_save(self, tracker)
            with self.engine.connect() as conn:
                stored_last = last_id(conn, sender_id)
        else:
            await self.stream_events(tracker)
            new_events = events[entry.persisted:]
            rows = [event_row(sender_id, e) for e in new_events]
            with self.engine.connect() as conn, _transaction(conn):
                for row in rows:
                    insert_event.run(conn, row)
                stored_last = last_id(conn, sender_id)
        if _cacheable(tracker):
            cache.check_in(sender_id, Entry(tracker, len(events), stored_last))
        else:
            cache.forget(sender_id)

    SQLTrackerStore.retrieve = retrieve
    SQLTrackerStore.save = save
    return cache
