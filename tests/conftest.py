"""Fixtures shared by every test layer."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The current model, trained first if any training input changed since the last build."""
    from bot.training import ModelPaths, ensure_model

    return ensure_model(ModelPaths(ROOT / "models"))


@pytest.fixture
async def clients() -> AsyncIterator[list[Any]]:
    """Collects the socket.io clients a test makes so they are all closed afterwards (a client
    of a killed server may already be gone)."""
    made: list[Any] = []
    yield made
    for client in made:
        with contextlib.suppress(Exception):
            await client.close()


@pytest.fixture
def made(clients: list[Any]) -> list[Any]:
    """The same list under the name the fault and scale-out tests use."""
    return clients
