"""handoff/sio_packet.py: the same binary-or-not answer as python-socketio's own packet, for
any payload, and the gateway's server uses it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from socketio import packet

from handoff.sio_packet import LoanPacket, contains_bytes

THEIRS = packet.Packet(packet.EVENT)._data_is_binary

leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
          | st.text(max_size=5) | st.binary(max_size=3)
          | st.binary(max_size=3).map(bytearray))
payloads = st.recursive(
    leaves,
    lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                   | st.dictionaries(st.text(max_size=3), inner, max_size=4)),
    max_leaves=30,
)


@given(payloads)
def test_the_answer_is_python_socketios(payload: Any) -> None:
    assert contains_bytes(payload) == bool(THEIRS(payload))


def test_bytes_deep_inside_a_long_schedule() -> None:
    rows: list[Any] = [{"period": i, "payment": 4414.42, "note": f"第{i}期"} for i in range(36)]
    reply = {"text": "还款计划", "payload": {"custom": {"schedule": rows}}}
    assert not contains_bytes(["message", reply])
    rows[-1]["note"] = b"\x00"
    assert contains_bytes(["message", reply]) and THEIRS(["message", reply])
    assert not contains_bytes(("message", b"\x00"))  # a tuple is not walked, as theirs


def test_a_payload_containing_itself_fails_alike() -> None:
    loop: list[Any] = []
    loop.append(loop)
    for check in (contains_bytes, THEIRS):
        with pytest.raises(RecursionError):
            check(loop)


def test_binary_events_are_still_binary() -> None:
    assert LoanPacket(packet.EVENT, data=["file", b"\x00\x01"]).packet_type == packet.BINARY_EVENT
    assert LoanPacket(packet.ACK, data=[{"blob": b"x"}]).packet_type == packet.BINARY_ACK
    assert LoanPacket(packet.EVENT, data=["message", {"text": "你好"}]).packet_type == packet.EVENT
    decoded = LoanPacket(encoded_packet='2/agent,["message",{"text":"你好"}]')
    assert decoded.data == ["message", {"text": "你好"}] and decoded.namespace == "/agent"


def test_the_gateways_server_speaks_with_it(tmp_path: Any) -> None:
    from handoff.app import build_gateway
    from handoff.settings import Settings

    gateway = build_gateway(Settings.from_env({
        "HANDOFF_DB_URL": f"sqlite:///{tmp_path / 'h.sqlite'}",
        "HANDOFF_VAR_DIR": str(tmp_path), "HANDOFF_RASA_URL": "http://127.0.0.1:9",
        "HANDOFF_SECRET": "s" * 32,
    }))
    try:
        assert gateway.sio.packet_class is LoanPacket
    finally:
        gateway.store.dispose()
