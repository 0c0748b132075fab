"""bot/tracker_cache.py: the cached SQL tracker store writes exactly Rasa's rows and never
hands out a tracker the database has moved past."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rasa")

from rasa.core.tracker_store import SQLTrackerStore  # noqa: E402
from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.events import (  # noqa: E402
    ActionExecuted,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)

from bot import tracker_cache  # noqa: E402

ORIGINAL = (SQLTrackerStore.retrieve, SQLTrackerStore.save)  # Rasa's own, before any install

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet, ask_rate, inform]
slots:
  product:
    type: text
    mappings: [{type: custom}]
  amount:
    type: float
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: 您好}]
""")


def turn_events(i: int) -> list[Event]:
    """One borrower turn: the message, a slot or two, the bot's answer, back to listening;
    the first turn opens the session as Rasa's processor does."""
    opening: list[Event] = [ActionExecuted("action_session_start"), SessionStarted(),
                            ActionExecuted("action_listen")] if i == 0 else []
    return opening + [
        UserUttered(f"第{i}句 借5万", {"name": "ask_rate", "confidence": 0.9},
                    [{"entity": "amount", "value": 50000 + i}]),
        ActionExecuted("action_answer_rate"),
        SlotSet("product", ["信用贷", "车贷"][i % 2]),
        SlotSet("amount", float(50000 + i)),
        BotUttered(f"答复{i}", {"buttons": [{"title": "是", "payload": "/affirm"}]}),
        ActionExecuted("action_listen"),
    ]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture()
def restore_store_class() -> Iterator[None]:
    try:
        yield
    finally:
        SQLTrackerStore.retrieve, SQLTrackerStore.save = ORIGINAL


def rows(store: SQLTrackerStore) -> list[tuple[Any, ...]]:
    """Stored rows without timestamps (those are stamped by the events, not the store)."""
    with store.engine.connect() as conn:
        out = []
        for sender, type_name, _ts, intent, action, data in conn.exec_driver_sql(
                "SELECT sender_id, type_name, timestamp, intent_name, action_name, data "
                "FROM events ORDER BY id"):
            body = json.loads(data)
            assert body.pop("timestamp") == _ts
            out.append((sender, type_name, intent, action, body))
        return out


def state(tracker: Any) -> dict[str, Any]:
    """A tracker's state (slots, latest message, loop, paused…) without the clock."""
    return {k: v for k, v in tracker.current_state().items() if k != "latest_event_time"}


async def converse(store: SQLTrackerStore, turns: int, sender: str = "s1") -> Any:
    """Turns the way Rasa's processor makes them: get or create, update, save."""
    tracker = None
    for i in range(turns):
        tracker = await store.get_or_create_tracker(sender)
        for event in turn_events(i):
            tracker.update(event)
        await store.save(tracker)
    return tracker


def test_rows_are_exactly_the_rows_rasa_writes(tmp_path: Path,
                                               restore_store_class: None) -> None:
    plain = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "plain.sqlite"))
    plain_final = run(converse(plain, 6))
    cache = tracker_cache.install(tracker_cache.TrackerCache(100))
    cached = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "cached.sqlite"))
    cached_final = run(converse(cached, 6))
    assert rows(cached) == rows(plain) and len(rows(plain)) == 6 * 6 + 3 + 1
    assert cache.hits == 5 and cache.misses == 1  # only the first read goes to SQL
    assert state(cached_final) == state(plain_final)
    # What a fresh read of the database gives is what the cached tracker says.
    SQLTrackerStore.retrieve, SQLTrackerStore.save = ORIGINAL
    reread = run(cached.retrieve("s1"))
    assert reread.current_state() == cached_final.current_state()  # same events, same times
    assert reread.get_slot("amount") == 50005.0 and reread.get_slot("product") == "车贷"


def test_rows_are_rasas_on_sqlalchemys_own_path(tmp_path: Path,
                                               restore_store_class: None) -> None:
    """Other databases than SQLite go through `Connection.execute` and SQLAlchemy's own
    transaction; with a SQLite dialect that claims another name, the same rows."""
    plain = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "plain.sqlite"))
    run(converse(plain, 4))
    tracker_cache.install(tracker_cache.TrackerCache(100))
    cached = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "cached.sqlite"))
    cached.engine.dialect.name = "not-sqlite"  # this engine's dialect only
    run(converse(cached, 4))
    assert rows(cached) == rows(plain)


POSTGRES_ADMIN_URL = os.environ.get(
    "LOANBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture()
def postgres_databases() -> Iterator[list[str]]:
    """Two throw-away databases on the local PostgreSQL (skips only if it is unreachable)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_ADMIN_URL, future=True, isolation_level="AUTOCOMMIT")
    names = [f"loanbot_tracker_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL unreachable at {make_url(POSTGRES_ADMIN_URL)!r}: {exc.orig}")
    try:
        yield names
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_rows_are_rasas_on_postgresql(postgres_databases: list[str],
                                      restore_store_class: None) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_ADMIN_URL)

    def store(db: str) -> SQLTrackerStore:
        return SQLTrackerStore(DOMAIN, dialect="postgresql", host=url.host, port=url.port,
                               db=db, username=url.username, password=url.password)

    plain = store(postgres_databases[0])
    plain_final = run(converse(plain, 4))
    cache = tracker_cache.install(tracker_cache.TrackerCache(100))
    cached = store(postgres_databases[1])
    cached_final = run(converse(cached, 4))
    try:
        assert rows(cached) == rows(plain) and len(rows(plain)) == 4 * 6 + 3 + 1
        assert cache.hits == 3 and cache.misses == 1
        assert state(cached_final) == state(plain_final)
    finally:
        plain.engine.dispose()
        cached.engine.dispose()


def test_a_write_by_someone_else_is_seen(tmp_path: Path, restore_store_class: None) -> None:
    cache = tracker_cache.install(tracker_cache.TrackerCache(100))
    db = str(tmp_path / "t.sqlite")
    mine = SQLTrackerStore(DOMAIN, dialect="sqlite", db=db)
    run(converse(mine, 3))
    # Another Rasa process (its own cache) appends to the same conversation.
    other_cache = tracker_cache.TrackerCache(100)
    assert other_cache.check_out("s1") is None
    with mine.engine.begin() as conn:
        row = tracker_cache.event_row("s1", SlotSet("product", "房贷"))
        conn.exec_driver_sql(
            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data)"
            " VALUES (?, ?, ?, ?, ?, ?)", tuple(row.values()))
    misses = cache.misses
    tracker = run(mine.retrieve("s1"))
    assert cache.misses == misses + 1
    assert tracker.get_slot("product") == "房贷"


def test_a_turn_that_never_saved_leaves_nothing_behind(tmp_path: Path,
                                                       restore_store_class: None) -> None:
    tracker_cache.install(tracker_cache.TrackerCache(100))
    store = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "t.sqlite"))
    run(converse(store, 3))
    broken = run(store.retrieve("s1"))
    broken.update(SlotSet("product", "半路失败"))  # the turn fails before save
    again = run(store.retrieve("s1"))
    assert again is not broken
    assert again.get_slot("product") != "半路失败"
    # ... and the failed turn's object, saved late, still stores only what it added.
    count = len(rows(store))
    run(store.save(again))
    assert len(rows(store)) == count


def test_a_new_session_is_reread_trimmed_as_rasa_does(tmp_path: Path,
                                                      restore_store_class: None) -> None:
    cache = tracker_cache.install(tracker_cache.TrackerCache(100))
    store = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "t.sqlite"))
    run(converse(store, 3))
    tracker = run(store.retrieve("s1"))
    tracker.update(ActionExecuted("action_session_start"))
    tracker.update(SessionStarted())
    tracker.update(ActionExecuted("action_listen"))
    run(store.save(tracker))
    assert len(cache) == 0
    fresh = run(store.retrieve("s1"))
    assert fresh is not tracker
    assert isinstance(list(fresh.events)[0], (SessionStarted, ActionExecuted))
    assert len(fresh.events) < len(tracker.events)


def test_the_cache_is_bounded() -> None:
    cache = tracker_cache.TrackerCache(2)
    for sender in ("a", "b", "c"):
        cache.check_in(sender, tracker_cache.Entry(object(), 0, None))
    assert len(cache) == 2 and cache.check_out("a") is None
    for sender in ("x", "y", "z"):
        cache.lend(sender, tracker_cache.Entry(object(), 0, None))
    assert cache.returned("x", object()) is None
    assert tracker_cache.cache_size({}) == tracker_cache.DEFAULT_CACHE_SIZE
    assert tracker_cache.cache_size({"LOANBOT_TRACKER_CACHE_SIZE": "0"}) == 0
    with pytest.raises(ValueError, match="integer"):
        tracker_cache.cache_size({"LOANBOT_TRACKER_CACHE_SIZE": "many"})
