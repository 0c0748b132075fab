"""handoff/store_calls.py: SQLite work runs on the event loop, networked databases in threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from handoff.errors import ConfigError
from handoff.settings import Settings
from handoff.store_calls import on_loop, store_runner


def test_auto_runs_sqlite_on_the_loop_and_networked_databases_in_threads() -> None:
    assert store_runner("auto", is_sqlite=True) is on_loop
    assert store_runner("auto", is_sqlite=False) is asyncio.to_thread
    assert store_runner("thread", is_sqlite=True) is asyncio.to_thread
    assert store_runner("loop", is_sqlite=False) is on_loop
    with pytest.raises(ValueError):
        store_runner("sometimes", is_sqlite=True)


def test_each_runner_runs_the_call_where_it_says() -> None:
    def where(tag: str, *, suffix: str) -> tuple[str, str]:
        return threading.current_thread().name, tag + suffix

    async def both() -> tuple[tuple[str, str], tuple[str, str]]:
        here = await on_loop(where, "a", suffix="!")
        there = await asyncio.to_thread(where, "b", suffix="?")
        return here, there

    here, there = asyncio.run(both())
    assert here == (threading.current_thread().name, "a!")
    assert there[0] != threading.current_thread().name and there[1] == "b?"


def test_the_mode_comes_from_the_environment() -> None:
    base = {"HANDOFF_SECRET": "s" * 40}
    assert Settings.from_env(base).store_calls == "auto"
    assert Settings.from_env({**base, "HANDOFF_STORE_CALLS": "Thread"}).store_calls == "thread"
    with pytest.raises(ConfigError, match="HANDOFF_STORE_CALLS"):
        Settings.from_env({**base, "HANDOFF_STORE_CALLS": "fast"})
