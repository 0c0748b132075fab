"""HTTP client for the Rasa server (REST channel + tracker events).

The gateway talks to Rasa over plain HTTP rather than through a custom Rasa channel, so Rasa
stays stateless from the gateway's point of view (see docs/protocol.md for the reasons).
Every call has explicit timeouts; failures surface as :class:`RasaUnavailable` so the
transport can hand the borrower to a human instead of leaving them waiting.

With several Rasa instances (HANDOFF_RASA_URLS) every call of a conversation goes to one
instance, so that instance's lock serialises its turns: the least busy one when the session is
first placed, or the one rendezvous hashing on the session id picks (handoff.placement says
which and why). Only when that instance refuses the connection (nothing was processed) does
the call move to the next instance in the session's ranking; Rasa's tracker store is shared
(PostgreSQL), so that instance continues the same conversation. A timeout is not retried
elsewhere: the owner may still be working on the turn.

Tracker events (the resume when an agent gives the borrower back) go before the messages
waiting for a connection: the borrower's next message waits for them under the session's
lock, and behind the queue they made that message wait for the queue twice (docs/
benchmarks.md, session 10).

Connections: each Rasa instance gets at most `connections_per_instance` keep-alive connections,
reused turn after turn; calls beyond that wait here, in order (handoff.rasa_http, which also
says why this is not aiohttp's client). Measured with two Rasa at 200
concurrent conversations (docs/benchmarks.md, session 6): under aiohttp's default pool (100
connections shared by every instance) new connections kept being opened, and a busy Rasa read
a request on a new connection late: the slowest calls, all on new connections, waited 10 s
before Rasa's handler started, while each turn took about 15 ms once started. A per-instance
cap also keeps one slow instance from taking the connections the others need. A small cap
(4, since session 10) keeps the queue here, where it is in order and resume events go first,
rather than inside Rasa, which runs one turn at a time anyway: with two Rasa at 50 busy
conversations p99 fell from 785–882 to 568–705 ms against 16, throughput unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import async_timeout

from handoff.placement import LEAST_BUSY, Placement
from handoff.rasa_http import ConnectFailed, ConnectionPool, HttpError, Origin

log = logging.getLogger(__name__)

# A reply from Rasa's REST channel: {"recipient_id", "text"?, "buttons"?, "image"?,
# "custom"?, "attachment"?}.
RasaReply = dict[str, Any]


# After refusing a connection an instance counts as fully busy for this long: new sessions
# go elsewhere instead of paying a refused connection (or a connect timeout) on every call.
REFUSED_SECONDS = 5.0
_REFUSED_LOAD = 1_000_000


class RasaUnavailable(Exception):
    """Rasa could not be reached, timed out, or answered with something unusable."""


class RasaClient:
    """Thin async wrapper around the two Rasa endpoints the gateway needs."""

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        timeout_seconds: float = 10.0,
        connect_timeout_seconds: float = 3.0,
        token: str | None = None,
        connections_per_instance: int = 4,
        placement: Placement | None = None,
    ) -> None:
        if connections_per_instance < 1:
            raise ValueError("connections_per_instance must be at least 1")
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self.base_urls: tuple[str, ...] = tuple(
            dict.fromkeys(u.rstrip("/") for u in urls if u.strip())
        )
        if not self.base_urls:
            raise ValueError("RasaClient needs at least one Rasa URL")
        self.base_url = self.base_urls[0]
        self._timeout = timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._query = f"?{urlencode({'token': token})}" if token else ""
        self._connections = connections_per_instance
        self._calls = {url: 0 for url in self.base_urls}  # in flight: running or waiting
        self.placement = placement if placement is not None else Placement(LEAST_BUSY)
        self._refused_until: dict[str, float] = {}
        # Pools are made lazily, inside the running loop their connections belong to.
        self._pools: dict[str, ConnectionPool] = {}

    def _pool(self, base: str) -> ConnectionPool:
        pool = self._pools.get(base)
        if pool is None:
            pool = self._pools[base] = ConnectionPool(Origin.from_url(base), self._connections)
        return pool

    async def close(self) -> None:
        """Release the kept connections (called on app shutdown)."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    async def send_message(
        self, session_id: str, text: str, metadata: Mapping[str, Any] | None = None
    ) -> list[RasaReply]:
        """Post one borrower message to the REST channel and return Rasa's replies."""
        body = {"sender": session_id, "message": text, "metadata": dict(metadata or {})}
        data = await self._post_routed(session_id, "/webhooks/rest/webhook", body)
        if not isinstance(data, list):
            raise RasaUnavailable("REST channel did not return a list")
        return [reply for reply in data if isinstance(reply, dict)]

    async def append_events(self, session_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        """Append tracker events, e.g. ``resume`` when a human returns the borrower."""
        path = f"/conversations/{quote(session_id, safe='')}/tracker/events"
        await self._post_routed(session_id, path, [dict(e) for e in events], urgent=True)

    def calls_now(self) -> dict[str, tuple[int, int]]:
        """Per instance (host:port[/path], never credentials), calls (running, waiting for one of
        the instance's connections) on this node: a growing wait says Rasa needs another
        instance, or this node more connections (GET /metrics)."""
        return {
            _instance_label(url): (min(n, self._connections), max(0, n - self._connections))
            for url, n in self._calls.items()
        }

    def instances_for(self, session_id: str) -> list[str]:
        """The Rasa URLs for a session: its own first (placed now if it has none), then the
        fall-backs in order."""
        return self.placement.instances_for(session_id, self.base_urls, self._load())

    def _load(self) -> Mapping[str, int]:
        """Calls outstanding per instance, an instance that refused lately as fully busy."""
        if not self._refused_until:
            return self._calls
        now = time.monotonic()
        for url in [u for u, until in self._refused_until.items() if until <= now]:
            del self._refused_until[url]
        return {url: n + (_REFUSED_LOAD if url in self._refused_until else 0)
                for url, n in self._calls.items()}

    async def _post_routed(self, session_id: str, path: str, body: Any, *,
                           urgent: bool = False) -> Any:
        candidates = self.instances_for(session_id)
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        for i, base in enumerate(candidates):
            self._calls[base] += 1
            try:
                answer = await self._post(base, path, payload, urgent)
                if i:
                    self.placement.moved(session_id, base)
                return answer
            except _Refused as exc:
                self._refused_until[base] = time.monotonic() + REFUSED_SECONDS
                if i == len(candidates) - 1:
                    raise RasaUnavailable(str(exc)) from exc
                log.warning("Rasa %s refused the connection; trying %s", _instance_label(base),
                            _instance_label(candidates[i + 1]))
            finally:
                self._calls[base] -= 1
        raise RasaUnavailable("no Rasa instance")  # unreachable: candidates is never empty

    async def _post(self, base: str, path: str, payload: bytes, urgent: bool) -> Any:
        """One call; the wait for a connection counts against the total, as the turn does,
        while opening one has its own shorter limit."""
        pool = self._pool(base)
        label = _instance_label(base)
        try:
            # A deadline on this task, not asyncio.wait_for: that runs the request in a task
            # of its own, two more loop turns on every call (docs/benchmarks.md, session 8).
            async with async_timeout.timeout(self._timeout):
                status, data = await pool.request("POST", path + self._query, payload,
                                                  connect_timeout=self._connect_timeout,
                                                  urgent=urgent)
        except ConnectFailed as exc:
            # Connection refused / unreachable: the request never reached Rasa.
            raise _Refused(f"{label}: {exc}") from exc
        except asyncio.TimeoutError:
            raise RasaUnavailable(f"{label}: no answer within {self._timeout:g} s") from None
        except HttpError as exc:
            raise RasaUnavailable(f"{label}: {exc}") from exc
        if status >= 400:
            raise RasaUnavailable(f"HTTP {status} from {label}{path}")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise RasaUnavailable(f"{label}: the answer is not JSON ({exc})") from None


def _instance_label(url: str) -> str:
    """host:port plus any path (two instances behind one proxy differ only by it); the
    URL's user and password are left out."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}{parts.path.rstrip('/')}"


class _Refused(RasaUnavailable):
    """The connection was refused: safe to try another instance (nothing was processed)."""

