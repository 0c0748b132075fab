"""Which Rasa instance handles a conversation: rendezvous (highest-random-weight) hashing.

Rasa OSS's RedisLockStore is a non-atomic get/modify/set, so two Rasa instances working on one
conversation at once can interleave turns. Sending every message of a session to the same
instance lets that instance's own lock serialise the turns. Rendezvous hashing is a form of
consistent hashing: each key goes to the node with the highest hash(node, key), so adding or
removing one of n nodes moves only about 1/n of the sessions, and every gateway node computes
the same answer with no shared state. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _weight(node: str, key: str) -> int:
    # sha256, not hash(): Python's str hash is salted per process, and every gateway process
    # must agree on the owner of a session.
    digest = hashlib.sha256(f"{node}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def rank(key: str, nodes: Sequence[str]) -> list[str]:
    """All nodes, the owner of `key` first, then the node that takes over if it is gone."""
    if not nodes:
        raise ValueError("no nodes to choose from")
    unique = list(dict.fromkeys(nodes))
    return sorted(unique, key=lambda node: (_weight(node, key), node), reverse=True)


def owner(key: str, nodes: Sequence[str]) -> str:
    """The node that handles `key` (the same answer on every process and machine)."""
    return rank(key, nodes)[0]
