"""A borrower's socket.io client for the load generator: Socket.IO 5 over Engine.IO 4, websocket
transport only, the default namespace, text packets.

Why: the load generator shares the machine's two cores with the system it measures, and every
borrower's phone would pay its own client's CPU. python-socketio's `AsyncClient` makes a task
and a timer for every packet engine.io reads (`wait_for`), another for its writer, and runs
each event's handler on a task of its own. This client sends the gateway the same frames
(`40`, `42["event",…]`, `42<id>[…]` for a call, `3` for each ping, `41` and `1` to leave) from
one reading task per connection and calls the handlers inline: ≈ 28 % less of the load
generator's CPU at 50 conversations (docs/benchmarks.md, session 19). python-socketio's stays
the default (`python -m bench --client lean` picks this one), so figures compare across
sessions; the integration test runs the benchmark's borrower through both against a real
gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

Handler = Callable[[Any], None]


class ProtocolError(RuntimeError):
    """The server answered something a Socket.IO 5 / Engine.IO 4 server does not."""


def websocket_url(url: str, path: str = "socket.io") -> str:
    """`http://host:port` → the Engine.IO 4 websocket endpoint on that host."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, f"/{path.strip('/')}/",
                       "EIO=4&transport=websocket", ""))


def event_packet(event: str, data: Any, ack_id: int | None = None) -> str:
    """A Socket.IO EVENT on the default namespace, as an Engine.IO MESSAGE."""
    ident = "" if ack_id is None else str(ack_id)
    return f"42{ident}{json.dumps([event, data], separators=(',', ':'))}"


def split_id(body: str) -> tuple[int | None, str]:
    """A Socket.IO packet's optional ack id and the JSON after it."""
    end = 0
    while end < len(body) and body[end].isdigit():
        end += 1
    return (int(body[:end]) if end else None), body[end:]


class LeanSocketIO:
    """One connection. `on` registers plain functions, called on the reading task in arrival
    order; `call` waits for the server's ack; `disconnect` leaves as python-socketio does."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self._http = http
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._handlers: dict[str, Handler] = {}
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._connected: asyncio.Future[str] | None = None
        self.sid = ""

    def on(self, event: str, handler: Handler) -> None:
        self._handlers[event] = handler

    async def connect(self, url: str, timeout: float, auth: Any = None) -> None:
        """Open the websocket and join the default namespace (`auth`: socket.io's connect
        payload, e.g. a borrower token); a refusal raises ConnectionRefusedError."""
        ws = await asyncio.wait_for(self._http.ws_connect(websocket_url(url)), timeout)
        self._ws = ws
        opened = await ws.receive(timeout)
        if opened.type != aiohttp.WSMsgType.TEXT or not opened.data.startswith("0"):
            await ws.close()
            raise ProtocolError(f"expected Engine.IO OPEN, got {opened.type!r} {opened.data!r}")
        self._connected = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(ws))
        await ws.send_str("40" if auth is None else "40" + json.dumps(auth))
        self.sid = await asyncio.wait_for(asyncio.shield(self._connected), timeout)

    async def emit(self, event: str, data: Any) -> None:
        await self._socket().send_str(event_packet(event, data))

    async def call(self, event: str, data: Any, timeout: float) -> Any:
        """Emit with an ack id and return the ack's first argument (None if it had none)."""
        ack_id = self._next_id
        self._next_id += 1
        answer = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = answer
        try:
            await self._socket().send_str(event_packet(event, data, ack_id))
            return await asyncio.wait_for(answer, timeout)
        finally:
            self._acks.pop(ack_id, None)

    async def disconnect(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str("41")
                await ws.send_str("1")
            await ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._fail(ConnectionError("disconnected"))

    def _socket(self) -> aiohttp.ClientWebSocketResponse:
        if self._ws is None or self._ws.closed:
            raise ConnectionError("not connected")
        return self._ws

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        error: BaseException = ConnectionError("the server closed the connection")
        try:
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    raise ProtocolError(f"unexpected websocket frame {frame.type!r}")
                text: str = frame.data
                kind = text[:1]
                if kind == "2":                      # Engine.IO PING → PONG
                    await ws.send_str("3" + text[1:])
                elif kind == "4":
                    self._packet(text[1:])
                elif kind == "1":                    # Engine.IO CLOSE
                    break
                elif kind != "6":                    # NOOP; anything else is not EIO 4
                    raise ProtocolError(f"unexpected Engine.IO packet {text[:40]!r}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # ends the connection; waiters get the reason
            error = exc
        finally:
            self._fail(error)

    def _packet(self, body: str) -> None:
        kind, rest = body[:1], body[1:]
        if kind == "2":                              # EVENT
            _, payload = split_id(rest)
            event, *args = json.loads(payload)
            handler = self._handlers.get(event)
            if handler is not None:
                handler(args[0] if args else None)
        elif kind == "3":                            # ACK
            ack_id, payload = split_id(rest)
            answer = self._acks.get(ack_id) if ack_id is not None else None
            if answer is not None and not answer.done():
                args = json.loads(payload)
                answer.set_result(args[0] if args else None)
        elif kind == "0":                            # CONNECT accepted
            if self._connected is not None and not self._connected.done():
                self._connected.set_result(str(json.loads(rest or "{}").get("sid", "")))
        elif kind == "4":                            # CONNECT_ERROR
            if self._connected is not None and not self._connected.done():
                self._connected.set_exception(ConnectionRefusedError(rest))
        elif kind == "1":                            # DISCONNECT by the server
            raise ConnectionError("the server disconnected the namespace")
        else:
            raise ProtocolError(f"unexpected Socket.IO packet {body[:40]!r}")

    def _fail(self, error: BaseException) -> None:
        waiting = [*self._acks.values(), self._connected]
        for future in waiting:
            if future is not None and not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: a failed wait is reported by its awaiter
