"""A trained agent that parses messages and holds whole conversations in-process: the
project's actions run by rasa-sdk inside the test (as `make run` does), against a freshly
seeded loan store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.stack import seed_loan_db


def conversation_agent(model: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from rasa.core.agent import Agent
    from rasa.utils.endpoints import EndpointConfig

    from bot.inprocess_actions import InProcessActions

    monkeypatch.setenv("LOAN_DB_URL", seed_loan_db(workdir))
    # Rasa's in-memory tracker and lock stores (Agent.load's default)
    return Agent.load(str(model), action_endpoint=InProcessActions(EndpointConfig()))


def parses(agent: Any, texts: list[str]) -> list[Any]:
    """The agent's parse of each text, in order."""
    async def parse() -> list[Any]:
        return [await agent.parse_message(text) for text in texts]

    return asyncio.run(parse())


def talk(agent: Any, conversations: list[list[str]], tag: str) -> list[Any]:
    """Every parse and every answer of the conversations, in order."""
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    async def run() -> list[Any]:
        out: list[Any] = []
        for i, texts in enumerate(conversations):
            for text in texts:
                out.append(await agent.parse_message(text))
                out.append(await agent.handle_message(
                    UserMessage(text, CollectingOutputChannel(), sender_id=f"{tag}-{i}")))
        return out

    return asyncio.run(run())
