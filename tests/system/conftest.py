"""System tests: the real trained bot (Rasa + action server) on loopback."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from handoff.app import build_gateway
from handoff.settings import Settings
from tests.integration.conftest import GatewayServer, ShiftableClock, add_agents
from tests.integration.fake_rasa import free_port
from tests.stack import ROOT, BotStack, bot_stack


@pytest.fixture(scope="session")
def bot(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotStack]:
    with bot_stack(tmp_path_factory.mktemp("bot-stack"), trained_model) as stack:
        yield stack


@contextmanager
def gateway_on(stack: BotStack, tmp_path: Path, *, agents: bool = True,
               **env: str) -> Iterator[GatewayServer]:
    """An in-thread gateway in front of the real bot, with its own database under tmp_path."""
    environ = {
        "HANDOFF_DB_URL": f"sqlite:///{tmp_path / 'handoff.sqlite'}",
        "HANDOFF_VAR_DIR": str(tmp_path),
        "HANDOFF_SECRET": secrets.token_urlsafe(40),
        "HANDOFF_RASA_URL": stack.rasa.url,
        "HANDOFF_RASA_TOKEN": stack.rasa_token,
        "HANDOFF_RASA_TIMEOUT": "30",
        "HANDOFF_SERVICE_HOURS": "00:00-23:59",
        "HANDOFF_POLICY_FILE": str(ROOT / "config" / "handoff.yml"),
        # gateways in the test process share its collector: no freeze here (test_main and
        # test_heap check the real process and settle itself)
        "HANDOFF_GC_YOUNG_THRESHOLD": "0",
        **env,
    }
    gateway = build_gateway(Settings.from_env(environ), clock=ShiftableClock())
    if agents:
        add_agents(gateway)
    server = GatewayServer(gateway, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
