"""The lean socket.io client's packet helpers (the protocol against a real gateway is in
tests/integration/test_bench_borrower.py)."""

from __future__ import annotations

import json

import pytest

from bench.sio_client import event_packet, split_id, websocket_url


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:5005", "ws://127.0.0.1:5005/socket.io/?EIO=4&transport=websocket"),
    ("https://chat.example/", "wss://chat.example/socket.io/?EIO=4&transport=websocket"),
    ("http://h:1/ignored/path", "ws://h:1/socket.io/?EIO=4&transport=websocket"),
])
def test_websocket_url_is_the_engine_io_4_endpoint(url: str, expected: str) -> None:
    assert websocket_url(url) == expected


def test_an_event_is_an_engine_io_message_of_a_socket_io_event() -> None:
    packet = event_packet("user_uttered", {"message": "你好", "session_id": "s1"})
    assert packet.startswith('42["user_uttered",')
    assert json.loads(packet[2:]) == ["user_uttered", {"message": "你好", "session_id": "s1"}]


def test_a_call_carries_its_ack_id_before_the_json() -> None:
    packet = event_packet("user_uttered", {"message": "x"}, ack_id=12)
    assert packet.startswith('4212["user_uttered"')
    assert split_id(packet[2:]) == (12, '["user_uttered",{"message":"x"}]')


@pytest.mark.parametrize(("body", "expected"), [
    ('[{"ok":true}]', (None, '[{"ok":true}]')),
    ('0[{"ok":true}]', (0, '[{"ok":true}]')),
    ("305[]", (305, "[]")),
    ("", (None, "")),
])
def test_split_id(body: str, expected: tuple[int | None, str]) -> None:
    assert split_id(body) == expected
