"""System tests: the real trained bot (Rasa + action server) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import BotStack, bot_stack


@pytest.fixture(scope="session")
def bot(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotStack]:
    with bot_stack(tmp_path_factory.mktemp("bot-stack"), trained_model) as stack:
        yield stack
