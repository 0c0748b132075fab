"""A borrower conversation that outlives its sockets, and the checks every fault test ends
with: each message stored exactly once and in order, relayed at most once and in order on
each connection, and the chat page showing exactly what is stored."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tests.integration.conftest import PASSWORD, Agent, Borrower, Client, http_json
from tests.integration.processes import stored_messages

WAIT = 10.0


def ok(ack: Any) -> dict[str, Any]:
    assert isinstance(ack, dict) and ack.get("ok") is True, ack
    return ack


def has_text(text: str) -> Any:
    return lambda d: isinstance(d, dict) and d.get("text") == text


class RecordingBorrower(Borrower):
    """A Borrower that also appends every event to a log shared by all its reconnections,
    tagged with the connection number."""

    def __init__(self, log: list[tuple[int, str, Any]], number: int) -> None:
        super().__init__()
        self.log = log
        self.number = number

    async def _record(self, event: str, *args: Any) -> None:
        self.log.append((self.number, event, args[0] if args else None))
        await super()._record(event, *args)


@dataclass
class Talk:
    """One borrower session across gateway restarts, kept the way the chat page keeps it
    (handoff/static/js/chat.js): messages keyed by seq from live and replayed `bot_uttered`
    and from `history`; a reconnect says the highest seq seen."""

    made: list[Client]
    sent: list[str] = field(default_factory=list)
    agent_sent: list[str] = field(default_factory=list)
    log: list[tuple[int, str, Any]] = field(default_factory=list)
    socket: RecordingBorrower | None = None
    session_id: str | None = None
    connections: int = 0
    wait: float = WAIT

    def uttered(self) -> list[tuple[int, int, bool]]:
        """(connection, seq, replayed) per stored message received as bot_uttered, in
        arrival order (a message rendered as several parts counts once)."""
        out: list[tuple[int, int, bool]] = []
        for number, name, data in self.log:
            meta = data.get("metadata", {}) if name == "bot_uttered" else {}
            seq = meta.get("seq")
            if isinstance(seq, int) and (not out or out[-1][:2] != (number, seq)):
                out.append((number, seq, bool(meta.get("replayed"))))
        return out

    def shown(self) -> dict[int, str]:
        """What the page shows: seq → text of every bot/agent/system message received."""
        view: dict[int, str] = {}
        for _, name, data in self.log:
            if name == "history":
                for m in data["messages"]:
                    if m["sender"] != "borrower":
                        view.setdefault(m["seq"], m["text"])
            elif name == "message" and data.get("sender") != "borrower":
                view.setdefault(data["seq"], data["text"])
        for _, name, data in self.log:
            seq = data.get("metadata", {}).get("seq") if name == "bot_uttered" else None
            if isinstance(seq, int) and data.get("text"):
                view.setdefault(seq, data["text"])
        return view

    async def open(self, url: str) -> RecordingBorrower:
        """(Re)connect; a returning client says the last seq it saw, as the page does."""
        if self.socket is not None:
            await self.socket.close()
        seen = [seq for _, seq, _ in self.uttered()]
        self.connections += 1
        borrower = RecordingBorrower(self.log, self.connections)
        self.made.append(borrower)
        await borrower.open(url, self.session_id, max(seen) if seen else None)
        assert self.session_id in (None, borrower.session_id)
        self.session_id = borrower.session_id
        self.socket = borrower
        return borrower

    async def say(self, text: str, client_msg_id: str | None = None) -> dict[str, Any]:
        assert self.socket is not None
        extra = {"client_msg_id": client_msg_id} if client_msg_id else {}
        ack = await self.socket.say(text, **extra)
        if isinstance(ack, dict) and ack.get("ok") and ack.get("route") != "duplicate":
            self.sent.append(text)
        return dict(ack)

    async def agent_says(self, agent: Agent, text: str,
                         client_msg_id: str | None = None) -> dict[str, Any]:
        """An agent's message to this session, remembered once acknowledged as stored."""
        extra = {"client_msg_id": client_msg_id} if client_msg_id else {}
        ack = await agent.call("message", {"session_id": self.session_id, "text": text, **extra})
        if isinstance(ack, dict) and ack.get("ok") and ack.get("route") != "duplicate":
            self.agent_sent.append(text)
        return dict(ack)

    async def wait_for(self, event: str, where: Any = lambda _: True) -> Any:
        assert self.socket is not None
        return await self.socket.wait_for(event, where, timeout=self.wait)

    async def check(self, db_url: str) -> list[tuple[int, str, str]]:
        """Stored exactly once and in order; relayed live at most once each and in order on
        every connection; the page ends up showing exactly what is stored."""
        assert self.session_id is not None
        rows = stored_messages(db_url, self.session_id)
        seqs = [seq for seq, _, _ in rows]
        assert seqs == list(range(1, len(rows) + 1)), seqs
        assert [text for _, sender, text in rows if sender == "borrower"] == self.sent
        assert [text for _, sender, text in rows if sender == "agent"] == self.agent_sent
        expected = {seq: text for seq, sender, text in rows
                    if sender != "borrower" and text.strip()}
        for _ in range(int(self.wait / 0.1)):  # the last relays may still be on their way
            if set(expected) <= set(self.shown()):
                break
            await asyncio.sleep(0.1)
        live = [(c, seq) for c, seq, replayed in self.uttered() if not replayed]
        assert len({seq for _, seq in live}) == len(live), f"relayed twice: {live}"
        for number in range(1, self.connections + 1):
            stream = [seq for c, seq, _ in self.uttered() if c == number]
            assert stream == sorted(stream), f"connection {number} got {stream}"
        assert self.shown() == expected
        return rows


async def agent_socket(url: str, username: str, made: list[Client],
                       token_url: str | None = None) -> Agent:
    token = http_json(f"{token_url or url}/api/login",
                      {"username": username, "password": PASSWORD})["token"]
    agent = Agent()
    made.append(agent)
    await agent.connect(url, auth={"token": token})
    await agent.wait_for("queue")
    return agent


async def queue_and_claim(talk: Talk, agent: Agent) -> None:
    """Ask for a human, wait until queued, let `agent` claim. Pending events are dropped
    first so an older "queued" status is not mistaken for this one (the log keeps them)."""
    assert talk.socket is not None
    talk.socket.events.clear()
    ok(await talk.say("转人工"))
    await talk.wait_for("status", lambda s: s.get("state") == "queued")
    ok(await agent.call("claim", {"session_id": talk.session_id}))
    await talk.wait_for("status", lambda s: s.get("state") == "assigned")


def session_row(db_url: str, session_id: str) -> tuple[str, str | None, str | None]:
    from handoff.store import Store, repo

    store = Store(db_url, create_tables=False)
    try:
        with store.read() as conn:
            row = repo.require_session(conn, session_id)
            return row.state, row.agent_id, row.reason
    finally:
        store.dispose()
