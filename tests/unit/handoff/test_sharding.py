"""Rendezvous hashing: every process agrees, the owner is stable, and adding or removing one
Rasa instance moves only the sessions it gains or loses."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections import Counter

import pytest

from handoff.sharding import owner, rank

NODES = ["http://rasa-a:5005", "http://rasa-b:5005", "http://rasa-c:5005"]
KEYS = [f"session-{i:05d}" for i in range(3000)]


def test_one_node_owns_everything() -> None:
    assert {owner(k, NODES[:1]) for k in KEYS[:50]} == {NODES[0]}


def test_rank_lists_every_node_once_owner_first() -> None:
    for key in KEYS[:50]:
        ranked = rank(key, NODES + [NODES[1]])
        assert sorted(ranked) == sorted(NODES) and ranked[0] == owner(key, NODES)


def test_no_nodes_is_an_error() -> None:
    with pytest.raises(ValueError):
        owner("x", [])


def test_owner_does_not_depend_on_node_order() -> None:
    for key in KEYS[:200]:
        assert owner(key, NODES) == owner(key, list(reversed(NODES)))


def test_spread_is_roughly_even() -> None:
    counts = Counter(owner(k, NODES) for k in KEYS)
    assert set(counts) == set(NODES)
    assert min(counts.values()) > len(KEYS) / len(NODES) * 0.8


def test_adding_a_node_moves_only_sessions_to_the_new_node() -> None:
    grown = NODES + ["http://rasa-d:5005"]
    moved = [k for k in KEYS if owner(k, NODES) != owner(k, grown)]
    assert all(owner(k, grown) == "http://rasa-d:5005" for k in moved)
    assert 0.15 < len(moved) / len(KEYS) < 0.35  # about 1/4


def test_removing_a_node_moves_only_its_sessions_to_their_runner_up() -> None:
    gone = NODES[1]
    left = [n for n in NODES if n != gone]
    for key in KEYS[:500]:
        before = rank(key, NODES)
        after = owner(key, left)
        if before[0] != gone:
            assert after == before[0]
        else:
            assert after == before[1]


def test_every_process_computes_the_same_owner() -> None:
    """Python salts str hashes per process; the owner must not depend on that."""
    key = secrets.token_urlsafe(24)
    code = (f"from handoff.sharding import owner; "
            f"print(owner({key!r}, {NODES!r}))")
    answers = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, env={"PYTHONHASHSEED": seed, "PYTHONPATH": "."}).stdout.strip()
        for seed in ("1", "2")
    }
    assert answers == {owner(key, NODES)}
