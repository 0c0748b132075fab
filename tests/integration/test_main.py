"""`python -m handoff` as a real process: uvicorn with wsproto, health, websocket upgrade."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import socketio

from tests.integration.fake_rasa import free_port
from tests.stack import GATEWAY_PYTHON

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_python_m_handoff_serves_health_and_websockets(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "HANDOFF_HOST": "127.0.0.1",
        "HANDOFF_PORT": str(port),
        "HANDOFF_VAR_DIR": str(tmp_path),
        "HANDOFF_DB_URL": f"sqlite:///{tmp_path / 'handoff.sqlite'}",
        "HANDOFF_SECRET": secrets.token_urlsafe(40),
        "HANDOFF_RASA_URL": f"http://127.0.0.1:{free_port()}",
    }
    log = (tmp_path / "gateway.log").open("wb")
    process = subprocess.Popen([GATEWAY_PYTHON, "-m", "handoff"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "gateway.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "gateway did not come up"
                time.sleep(0.2)
        # the interpreter `make run` gives it (handoff/interpreter.py), not just any Python
        assert Path(f"/proc/{process.pid}/exe").resolve() == Path(GATEWAY_PYTHON).resolve()
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, transports=["websocket"], wait_timeout=5)
        assert client.transport() == "websocket"
        await client.disconnect()
        # As browsers connect by default: long-polling first, then engine.io's upgrade
        # exchange on the websocket (handoff/eio_websocket.py keeps engine.io's own).
        upgrading = socketio.AsyncClient(reconnection=False)
        confirmed: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        upgrading.on("session_confirm", lambda data: confirmed.set_result(data))
        await upgrading.connect(url, transports=["polling", "websocket"], wait_timeout=5)
        for _ in range(50):
            if upgrading.transport() == "websocket":
                break
            await asyncio.sleep(0.1)
        assert upgrading.transport() == "websocket"
        await upgrading.emit("session_request", {"session_id": None})
        assert await asyncio.wait_for(confirmed, 5)
        await upgrading.disconnect()
        printed = (tmp_path / "gateway.log").read_text()
        assert f"{url}/healthz" in printed
    finally:
        process.terminate()
        process.wait(15)
        log.close()
