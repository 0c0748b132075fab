"""A small HTTP/1.1 client for the gateway's calls to Rasa: kept connections, at most a
fixed number per instance, one JSON request and one response at a time on each.

Why not aiohttp's client, which the gateway used until session 7: every bot turn waits for
one call to Rasa, and aiohttp builds URL, header, cookie, trace and response objects around
each request. Writing the request in one go and reading a Content-Length (or chunked) answer
from a kept stream costs ≈ 0.17 ms less per call (micro-benchmark, docs/benchmarks.md
session 7), on a path the gateway's overhead target counts.

What it does not do, because the gateway never needs it: redirects, cookies, compression,
proxies, request streaming, HTTP/2. Anything a server answers outside plain HTTP/1.x is a
`ProtocolError`, never a guess.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections import deque
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

# A Rasa reply list or a tracker is small; this only stops a broken upstream from filling
# the gateway's memory.
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_HEADER_LINES = 100
# Sanic (Rasa) closes a connection after 5 s without a request; ours are dropped before, so a
# request never goes out on a connection the server is closing.
IDLE_SECONDS = 2.0


class HttpError(Exception):
    """The call failed; nothing is known about whether the server processed it."""


class ConnectFailed(HttpError):
    """No connection could be made: the request never reached the server."""


class ProtocolError(HttpError):
    """The server's answer was not HTTP/1.x this client can read."""


@dataclass(frozen=True)
class Origin:
    """Where an instance lives: scheme, host, port, a path prefix, and credentials from the
    URL as a Basic Authorization header (never logged)."""

    scheme: str
    host: str
    port: int
    path: str
    authorization: str | None

    @classmethod
    def from_url(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        auth = None
        if parts.username is not None:
            raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            auth = "Basic " + base64.b64encode(raw).decode("ascii")
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"), auth)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


class _Connection:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    @property
    def alive(self) -> bool:
        """Neither side has closed it."""
        return not self.reader.at_eof() and not self.writer.is_closing()

    def usable(self, now: float) -> bool:
        return self.alive and now - self.idle_since < IDLE_SECONDS

    def close(self) -> None:
        self.writer.close()


class _ServerClosed(HttpError):
    """The connection ended before a single byte of the answer."""


class ConnectionPool:
    """At most `limit` connections to one origin; callers beyond that wait in arrival order
    and are handed a connection (or a free slot to open one) as soon as a call ends. Urgent
    callers wait in a line of their own, served first."""

    def __init__(self, origin: Origin, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.origin = origin
        self.limit = limit
        self._idle: list[_Connection] = []          # most recently used last
        self._open = 0                              # idle + in use + being opened
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._urgent: deque[asyncio.Future[_Connection | None]] = deque()
        self._ssl = ssl.create_default_context() if origin.scheme == "https" else None

    @property
    def open_connections(self) -> int:
        return self._open

    async def request(self, method: str, target: str, body: bytes, *,
                      connect_timeout: float, urgent: bool = False) -> tuple[int, bytes]:
        """Send one request (target: path and query) and return (status, body); an urgent
        one goes before every non-urgent caller still waiting for a connection."""
        conn = await self._acquire(connect_timeout, urgent)
        reusable = False
        try:
            status, data, reusable = await self._exchange(conn, method, target, body)
            return status, data
        finally:
            self._release(conn, reusable)

    def close(self) -> None:
        """Close the idle connections; those in use close when their call ends."""
        while self._idle:
            self._discard(self._idle.pop())

    # -- the pool ----------------------------------------------------------------------

    async def _acquire(self, connect_timeout: float, urgent: bool = False) -> _Connection:
        loop = asyncio.get_running_loop()
        if not self._waiters and not self._urgent:
            now = loop.time()
            while self._idle:
                conn = self._idle.pop()
                if conn.usable(now):
                    return conn
                self._discard(conn)
            if self._open < self.limit:
                self._open += 1
                return await self._connect(connect_timeout)
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        (self._urgent if urgent else self._waiters).append(waiter)
        try:
            handed = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Handed something just as we were cancelled: pass it on.
                late = waiter.result()
                if late is None:
                    self._open -= 1
                    self._pass_slot()
                else:
                    self._release(late, True)
            else:
                self._remove_waiter(waiter)
            raise
        if handed is not None:
            return handed
        return await self._connect(connect_timeout)    # a slot, counted in _open for us

    async def _connect(self, timeout: float) -> _Connection:
        """Open a connection for a slot already counted in `_open`."""
        origin = self.origin
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    origin.host, origin.port, ssl=self._ssl,
                    server_hostname=origin.host if self._ssl else None,
                ),
                timeout,
            )
        except BaseException as exc:
            self._open -= 1
            self._pass_slot()
            if isinstance(exc, asyncio.TimeoutError):
                raise HttpError(f"connect timeout after {timeout:g} s") from None
            if isinstance(exc, OSError):
                raise ConnectFailed(f"{type(exc).__name__}: {exc}") from exc
            raise
        return _Connection(reader, writer)

    def _release(self, conn: _Connection, reusable: bool) -> None:
        now = asyncio.get_running_loop().time()
        if reusable and conn.alive:
            conn.idle_since = now
            waiter = self._next_waiter()
            if waiter is not None:
                waiter.set_result(conn)
                return
            self._idle.append(conn)
            return
        self._discard(conn)
        self._pass_slot()

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1

    def _pass_slot(self) -> None:
        """A connection closed: let the first waiter open one in its place."""
        if self._open >= self.limit:
            return
        waiter = self._next_waiter()
        if waiter is not None:
            self._open += 1
            waiter.set_result(None)

    def _next_waiter(self) -> asyncio.Future[_Connection | None] | None:
        """The first caller still waiting, urgent ones first (taken out of its line)."""
        for line in (self._urgent, self._waiters):
            while line:
                waiter = line.popleft()
                if not waiter.done():
                    return waiter
        return None

    def _remove_waiter(self, waiter: asyncio.Future[_Connection | None]) -> None:
        for line in (self._urgent, self._waiters):
            with contextlib.suppress(ValueError):   # already handed something and gone
                line.remove(waiter)

    # -- one exchange ------------------------------------------------------------------

    async def _exchange(self, conn: _Connection, method: str, target: str,
                        body: bytes) -> tuple[int, bytes, bool]:
        origin = self.origin
        head = [f"{method} {origin.path}{target} HTTP/1.1",
                f"Host: {origin.host_header}",
                "Content-Type: application/json",
                f"Content-Length: {len(body)}",
                "Accept: application/json"]
        if origin.authorization:
            head.append(f"Authorization: {origin.authorization}")
        reader = conn.reader
        try:
            conn.writer.write("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body)
            await conn.writer.drain()
            status_line = await reader.readline()
            if not status_line:
                raise _ServerClosed("the server closed the connection before answering")
            version, status = _status(status_line)
            headers = await _headers(reader)
            keep = version == b"HTTP/1.1" and b"close" not in headers.get(b"connection", b"")
            if status in (204, 304) or 100 <= status < 200:
                return status, b"", keep
            if b"chunked" in headers.get(b"transfer-encoding", b""):
                data = await _chunked(reader)
            elif b"content-length" in headers:
                length = _int(headers[b"content-length"])
                if length > MAX_BODY_BYTES:
                    raise ProtocolError(f"answer of {length} bytes is too large")
                data = await reader.readexactly(length)
            else:
                data = await _to_eof(reader)
                keep = False
            return status, data, keep
        except asyncio.IncompleteReadError:
            raise HttpError("the connection closed in the middle of the answer") from None
        except ValueError as exc:  # StreamReader.readline's answer to a line over its limit
            raise ProtocolError(f"unreadable answer: {exc}") from None
        except (OSError, RuntimeError) as exc:
            # connection reset or lost, writing or reading (uvloop, which the gateway runs on,
            # raises RuntimeError for a write to a transport that is already closed)
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc


def _status(line: bytes) -> tuple[bytes, int]:
    parts = line.split(None, 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
    return parts[0], _int(parts[1])


async def _headers(reader: asyncio.StreamReader) -> dict[bytes, bytes]:
    headers: dict[bytes, bytes] = {}
    for _ in range(MAX_HEADER_LINES):
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            return headers
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError(f"bad header line: {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip().lower() if key in (b"connection", b"transfer-encoding") \
            else value.strip()
        headers[key] = headers[key] + b"," + value if key in headers else value
    raise ProtocolError("too many header lines")


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readline()
        if not size_line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(size_line, None)
        size = _int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            await _headers(reader)  # trailers, up to the blank line
            return b"".join(parts)
        total += size
        if total > MAX_BODY_BYTES:
            raise ProtocolError("chunked answer is too large")
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError("chunk not followed by CRLF")


async def _to_eof(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while data := await reader.read(65536):
        total += len(data)
        if total > MAX_BODY_BYTES:
            raise ProtocolError("answer is too large")
        chunks.append(data)
    return b"".join(chunks)


def _int(raw: bytes, base: int = 10) -> int:
    try:
        value = int(raw.strip(), base)
    except ValueError:
        raise ProtocolError(f"not a number: {raw[:40]!r}") from None
    if value < 0:
        raise ProtocolError(f"negative number: {raw[:40]!r}")
    return value
