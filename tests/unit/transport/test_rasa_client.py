"""RasaClient against the stand-in Rasa over real HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from handoff.rasa_client import RasaClient, RasaUnavailable
from tests.integration.fake_rasa import GREETING_REPLY, HANDOFF_CUSTOM, FakeRasa, free_port


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    with FakeRasa(slow_seconds=1.0) as fake:
        yield fake


async def _send(client: RasaClient, sender: str, text: str) -> list[dict[str, object]]:
    try:
        return await client.send_message(sender, text, {"seq": 1})
    finally:
        await client.close()


def test_send_message_returns_replies_and_passes_sender_and_metadata(rasa: FakeRasa) -> None:
    replies = asyncio.run(_send(RasaClient(rasa.url), "s1", "你好"))
    assert replies == [{"recipient_id": "s1", "text": GREETING_REPLY}]
    assert rasa.messages == [{"sender": "s1", "message": "你好", "metadata": {"seq": 1}}]


def test_handoff_payload_comes_back_unchanged(rasa: FakeRasa) -> None:
    replies = asyncio.run(_send(RasaClient(rasa.url), "s2", "我要转人工"))
    assert replies[-1]["custom"] == HANDOFF_CUSTOM


def test_append_events_posts_to_tracker_with_the_auth_token(rasa: FakeRasa) -> None:
    async def go() -> None:
        client = RasaClient(rasa.url, token="t0ken")
        try:
            await client.append_events("s3", [{"event": "resume"}])
        finally:
            await client.close()

    asyncio.run(go())
    assert rasa.events_for("s3") == [{"event": "resume"}]
    assert rasa.tokens == ["t0ken"]


def test_connection_refused_is_rasa_unavailable() -> None:
    client = RasaClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RasaUnavailable):
        asyncio.run(_send(client, "s4", "你好"))


def test_timeout_is_rasa_unavailable(rasa: FakeRasa) -> None:
    client = RasaClient(rasa.url, timeout_seconds=0.3)
    with pytest.raises(RasaUnavailable):
        asyncio.run(_send(client, "s5", "慢一点"))


def test_http_error_is_rasa_unavailable(rasa: FakeRasa) -> None:
    with pytest.raises(RasaUnavailable, match="HTTP 500"):
        asyncio.run(_send(RasaClient(rasa.url), "s6", "坏了"))
