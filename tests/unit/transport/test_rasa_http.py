"""The gateway's own HTTP/1.1 client for Rasa (handoff/rasa_http.py), against a scripted server
that answers with exactly the bytes a test gives: framing, kept and closed connections, the
per-instance cap under cancellation, and answers it must refuse."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvloop

from handoff import rasa_http
from handoff.rasa_client import RasaClient, RasaUnavailable
from handoff.rasa_http import ConnectionPool, Origin, ProtocolError

Answer = Callable[[bytes], Awaitable[bytes | None]]  # request bytes → raw answer (None: hang up)


@dataclass
class ScriptedServer:
    """Reads one request at a time per connection and writes what `answer` returns."""

    answer: Answer
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    hang_up_after_answer: bool = False   # close without saying so, as a keep-alive expiry does
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                raw = await self.answer(request)
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if self.hang_up_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def json_answer(payload: Any, *, extra: str = "", version: str = "HTTP/1.1") -> bytes:
    body = json.dumps(payload).encode()
    return (f"{version} 200 OK\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def run_with(answer: Answer, test: Callable[[ScriptedServer], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        server = ScriptedServer(answer)
        await server.start()
        try:
            return await test(server)
        finally:
            await server.stop()

    return asyncio.run(main())


async def echo_text(request: bytes) -> bytes:
    body = json.loads(request.split(b"\r\n\r\n", 1)[1])
    return json_answer([{"recipient_id": body["sender"], "text": body["message"]}])


def test_a_kept_connection_carries_call_after_call_and_the_request_is_plain_json() -> None:
    async def test(server: ScriptedServer) -> list[Any]:
        client = RasaClient(server.url, token="s3cret")
        try:
            return [await client.send_message("kept-session-1", f"第{i}句") for i in range(5)]
        finally:
            await client.close()

    holder: list[ScriptedServer] = []

    async def recording(server: ScriptedServer) -> list[Any]:
        holder.append(server)
        return await test(server)

    replies = run_with(echo_text, recording)
    server = holder[0]
    assert [r[0]["text"] for r in replies] == [f"第{i}句" for i in range(5)]
    assert server.connections == 1
    head, body = server.requests[0].split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /webhooks/rest/webhook?token=s3cret HTTP/1.1\r\n")
    assert b"\r\nContent-Type: application/json" in head
    assert json.loads(body) == {"sender": "kept-session-1", "message": "第0句", "metadata": {}}


def test_a_chunked_answer_is_joined() -> None:
    body = json.dumps([{"recipient_id": "c", "text": "分块回复"}]).encode()
    parts = [body[:7], body[7:20], body[20:]]
    chunked = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nX-T: 1\r\n\r\n"

    async def answer(_: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked

    async def test(server: ScriptedServer) -> tuple[Any, Any]:
        client = RasaClient(server.url)
        try:
            return (await client.send_message("chunk-session", "x"),
                    await client.send_message("chunk-session", "y"))
        finally:
            await client.close()

    first, second = run_with(answer, test)
    assert first == second == [{"recipient_id": "c", "text": "分块回复"}]


@pytest.mark.parametrize("extra, version", [("Connection: close\r\n", "HTTP/1.1"),
                                            ("", "HTTP/1.0")])
def test_a_connection_the_server_closes_is_not_used_again(extra: str, version: str) -> None:
    async def answer(request: bytes) -> bytes:
        return json_answer([{"text": "好"}], extra=extra, version=version)

    async def test(server: ScriptedServer) -> int:
        client = RasaClient(server.url)
        try:
            for _ in range(3):
                assert await client.send_message("close-session", "x") == [{"text": "好"}]
        finally:
            await client.close()
        return server.connections

    assert run_with(answer, test) == 3


def test_an_answer_without_length_is_read_to_the_end_and_not_kept() -> None:
    # A server that writes an answer with no length and closes: the body is all it sent.
    async def main() -> tuple[int, bytes, int]:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[1, 2]")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = ConnectionPool(Origin.from_url(f"http://127.0.0.1:{port}"), 2)
        try:
            status, data = await pool.request("POST", "/x", b"{}", connect_timeout=3)
            return status, data, pool.open_connections
        finally:
            pool.close()
            server.close()
            await server.wait_closed()

    assert asyncio.run(main()) == (200, b"[1, 2]", 0)


def test_a_connection_idle_longer_than_the_server_keeps_it_is_replaced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rasa_http, "IDLE_SECONDS", 0.05)

    async def test(server: ScriptedServer) -> int:
        client = RasaClient(server.url)
        try:
            await client.send_message("idle-session", "一")
            await client.send_message("idle-session", "二")   # reused at once
            await asyncio.sleep(0.1)
            await client.send_message("idle-session", "三")   # too old: a new one
        finally:
            await client.close()
        return server.connections

    assert run_with(echo_text, test) == 2


def test_a_connection_the_server_dropped_while_idle_is_replaced() -> None:
    async def test(server: ScriptedServer) -> tuple[int, int]:
        server.hang_up_after_answer = True
        client = RasaClient(server.url)
        try:
            await client.send_message("dropped-session", "一")
            await asyncio.sleep(0.05)   # the server's close has arrived
            await client.send_message("dropped-session", "二")
        finally:
            await client.close()
        return len(server.requests), server.connections

    assert run_with(echo_text, test) == (2, 2)


@pytest.mark.parametrize("raw", [
    b"SPDY/3 200 OK\r\n\r\n",
    b"HTTP/1.1 abc OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nnot j",
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 2\r\n\r\n[]",
])
def test_an_unreadable_or_failed_answer_is_rasa_unavailable(raw: bytes) -> None:
    async def answer(_: bytes) -> bytes:
        return raw

    async def test(server: ScriptedServer) -> None:
        client = RasaClient(server.url)
        try:
            with pytest.raises(RasaUnavailable):
                await client.send_message("bad-answer-session", "x")
            # and the next call still works on a fresh connection
            server.answer = echo_text
            assert await client.send_message("bad-answer-session", "再来") == [
                {"recipient_id": "bad-answer-session", "text": "再来"}]
        finally:
            await client.close()

    run_with(answer, test)


def assert_unavailable(raw: bytes, match: str, *, hang_up: bool = False) -> None:
    """A server answering `raw` (and hanging up after it, if asked) makes the call fail as
    RasaUnavailable with a reason matching `match`."""
    async def answer(_: bytes) -> bytes:
        return raw

    async def test(server: ScriptedServer) -> None:
        server.hang_up_after_answer = hang_up
        client = RasaClient(server.url)
        try:
            with pytest.raises(RasaUnavailable, match=match):
                await client.send_message("refused-answer-session", "x")
        finally:
            await client.close()

    run_with(answer, test)


def test_an_answer_larger_than_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rasa_http, "MAX_BODY_BYTES", 1000)
    assert_unavailable(json_answer([{"text": "长" * 2000}]), "too large")


def test_a_connection_cut_in_the_middle_of_the_answer_is_rasa_unavailable() -> None:
    assert_unavailable(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[{\"te",
                       "middle of the answer", hang_up=True)


def test_credentials_in_the_url_become_basic_auth_and_stay_out_of_errors() -> None:
    async def answer(_: bytes) -> bytes:
        return b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"

    async def test(server: ScriptedServer) -> tuple[bytes, str]:
        url = server.url.replace("http://", "http://rasa%40ops:p%3Ass@")
        client = RasaClient(url)
        try:
            with pytest.raises(RasaUnavailable) as caught:
                await client.send_message("auth-session", "x")
        finally:
            await client.close()
        return server.requests[0], str(caught.value)

    request, error = run_with(answer, test)
    expected = base64.b64encode(b"rasa@ops:p:ss").decode()
    assert f"\r\nAuthorization: Basic {expected}\r\n".encode() in request
    assert "p:ss" not in error and "p%3Ass" not in error and "HTTP 500" in error


def test_cancelled_callers_give_back_their_place_and_the_cap_holds() -> None:
    """Calls cancelled while waiting for a connection, or while running, must neither leak a
    slot (later calls would wait forever) nor open more than the cap."""
    async def test(server: ScriptedServer) -> tuple[int, int]:
        gate = asyncio.Event()

        async def slow(request: bytes) -> bytes:
            await gate.wait()
            return await echo_text(request)

        server.answer = slow
        client = RasaClient(server.url, connections_per_instance=2, timeout_seconds=10)
        try:
            calls = [asyncio.ensure_future(client.send_message(f"cancel-{i}", "x"))
                     for i in range(6)]
            await asyncio.sleep(0.1)          # two running, four waiting
            for call in calls[1:5]:           # one running and three waiting are cancelled
                call.cancel()
            await asyncio.sleep(0.05)
            gate.set()
            done = await asyncio.gather(calls[0], calls[5])
            assert [d[0]["recipient_id"] for d in done] == ["cancel-0", "cancel-5"]
            more = await asyncio.gather(*(client.send_message(f"after-{i}", "y")
                                          for i in range(6)))
            assert len(more) == 6
            pool = client._pools[client.base_url]
            return pool.open_connections, server.connections
        finally:
            await client.close()

    open_now, opened = run_with(echo_text, test)
    assert open_now <= 2
    assert opened <= 3   # the two of the cap, plus one replacing the cancelled running call


def test_origins_keep_path_port_and_ipv6() -> None:
    origin = Origin.from_url("https://u:p@[::1]:8443/rasa/")
    assert (origin.scheme, origin.host, origin.port, origin.path) == ("https", "::1", 8443, "/rasa")
    assert origin.host_header == "[::1]:8443"
    assert Origin.from_url("http://rasa").host_header == "rasa"
    with pytest.raises(ValueError):
        Origin.from_url("ftp://rasa")
    with pytest.raises(ValueError):
        ConnectionPool(Origin.from_url("http://rasa"), 0)
    with pytest.raises(ProtocolError):
        rasa_http._int(b"-1")


@pytest.mark.parametrize("reusable", [True, False])
def test_a_caller_cancelled_just_as_it_is_handed_a_connection_passes_it_on(
        reusable: bool) -> None:
    """The race the cap must survive: a connection (or, when the last one closed, the right to
    open one) is handed to the first waiter, and that waiter is cancelled before it runs."""

    async def test(server: ScriptedServer) -> int:
        pool = ConnectionPool(Origin.from_url(server.url), 1)
        try:
            held = await pool._acquire(3)
            second = asyncio.ensure_future(pool._acquire(3))
            third = asyncio.ensure_future(pool._acquire(3))
            await asyncio.sleep(0.01)                 # both wait, in order
            pool._release(held, reusable)             # handed to the second ...
            second.cancel()                           # ... which is cancelled before it runs
            conn = await asyncio.wait_for(third, 2)   # the third must not wait forever
            pool._release(conn, True)
            with pytest.raises(asyncio.CancelledError):
                await second
            return pool.open_connections
        finally:
            pool.close()

    assert run_with(echo_text, test) == 1


def test_callers_waiting_behind_a_refused_connection_fail_too_instead_of_waiting() -> None:
    async def main() -> list[BaseException | Any]:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()                     # nothing listens there now
        client = RasaClient(f"http://127.0.0.1:{port}", connections_per_instance=1)
        try:
            return await asyncio.wait_for(asyncio.gather(
                *(client.send_message(f"refused-{i}", "x") for i in range(3)),
                return_exceptions=True), 5)
        finally:
            await client.close()

    outcomes = asyncio.run(main())
    assert all(isinstance(o, RasaUnavailable) for o in outcomes)


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Both event loops: the gateway runs on uvloop, whose transports fail differently."""
    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(
        uvloop.EventLoopPolicy() if request.param == "uvloop" else asyncio.DefaultEventLoopPolicy())
    try:
        yield str(request.param)
    finally:
        asyncio.set_event_loop_policy(before)


def test_a_connection_lost_while_the_request_is_written_is_an_http_error(loop_kind: str) -> None:
    """The failure can come from writing too, not only from reading the answer: it must reach
    the caller as HttpError (so RasaUnavailable, and a hand-off), never as a bare OSError or,
    on uvloop, RuntimeError."""

    async def test(server: ScriptedServer) -> None:
        pool = ConnectionPool(Origin.from_url(server.url), 1)
        try:
            conn = await pool._acquire(3)
            conn.writer.transport.abort()        # the connection is lost under our feet
            await asyncio.sleep(0.01)
            with pytest.raises(rasa_http.HttpError):
                await pool._exchange(conn, "POST", "/x", b"{}")
        finally:
            pool.close()

    run_with(echo_text, test)


def test_urgent_callers_are_served_before_those_already_waiting() -> None:
    """Resume events wait in a line of their own: the borrower's next message waits for them
    under the session's lock, so behind the queue it would wait for the queue twice."""

    async def test(server: ScriptedServer) -> list[str]:
        gate = asyncio.Event()
        order: list[str] = []

        async def gated(request: bytes) -> bytes:
            await gate.wait()
            body = json.loads(request.split(b"\r\n\r\n", 1)[1])
            order.append(body["sender"])
            return await echo_text(request)

        server.answer = gated
        pool = ConnectionPool(Origin.from_url(server.url), 1)

        def call(name: str, urgent: bool = False) -> asyncio.Future[Any]:
            body = json.dumps({"sender": name, "message": "x"}).encode()
            return asyncio.ensure_future(
                pool.request("POST", "/", body, connect_timeout=3, urgent=urgent))

        try:
            calls = [call("running")]
            await asyncio.sleep(0.05)
            for name, urgent in (("a", False), ("b", False), ("resume-1", True),
                                 ("c", False), ("resume-2", True)):
                calls.append(call(name, urgent))
                await asyncio.sleep(0.01)
            gate.set()
            await asyncio.gather(*calls)
            return order
        finally:
            pool.close()

    assert run_with(echo_text, test) == ["running", "resume-1", "resume-2", "a", "b", "c"]


def test_a_cancelled_urgent_caller_leaves_its_line_and_the_slot_passes_on() -> None:
    async def test(server: ScriptedServer) -> int:
        pool = ConnectionPool(Origin.from_url(server.url), 1)
        try:
            held = await pool._acquire(3)
            urgent = asyncio.ensure_future(pool._acquire(3, urgent=True))
            normal = asyncio.ensure_future(pool._acquire(3))
            await asyncio.sleep(0.01)
            urgent.cancel()
            await asyncio.sleep(0.01)
            assert not pool._urgent and len(pool._waiters) == 1
            pool._release(held, False)                # closed: the right to open one passes on
            conn = await asyncio.wait_for(normal, 2)
            pool._release(conn, True)
            return pool.open_connections
        finally:
            pool.close()

    assert run_with(echo_text, test) == 1
