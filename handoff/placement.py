"""Which Rasa instance serves a session, when one gateway node sends every call.

Rendezvous hashing (handoff.sharding) spreads sessions evenly over time, but not the load at
any moment: a borrower waits for the turns queued at their own instance, and with sessions
pinned by a hash one instance often holds many more waiting borrowers than the other. Measured
with two Rasa at 50 concurrent conversations (docs/benchmarks.md, session 10): 27 against 16
calls outstanding on average, up to 41 against 8, and almost all of a slow turn's time was
spent in the longer queue.

Here a session's first call goes to the instance with the fewest calls outstanding on this
node (running or waiting for a connection), ties by the session's rendezvous rank; every later
call of the session goes to the same instance, so Rasa's own lock still orders its turns and
its tracker stays warm in that instance. Only this node knows the choice, so several gateway
nodes must keep to the hash, which every node computes alike (settings: HANDOFF_RASA_PLACEMENT).

An instance that has refused a connection counts as fully busy for a few seconds
(handoff.rasa_client), so new sessions are not placed on an instance that is down, and a
session whose instance refused stays on the one that answered.

A choice is forgotten only when more than `capacity` sessions have been placed since it was
last used (or the node restarts); a session placed again continues from the shared tracker
store on whichever instance it lands. Pure: no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

from handoff.sharding import rank

HASH = "hash"
LEAST_BUSY = "least-busy"
MODES = (HASH, LEAST_BUSY)


class Placement:
    """The instances to try for a session, its own first, then the fall-backs in rank order."""

    def __init__(self, mode: str = LEAST_BUSY, capacity: int = 50_000) -> None:
        if mode not in MODES:
            raise ValueError(f"placement must be one of {', '.join(MODES)}, not {mode!r}")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.mode = mode
        self.capacity = capacity
        self._chosen: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._chosen)

    def instances_for(self, session_id: str, nodes: Sequence[str],
                      outstanding: Mapping[str, int]) -> list[str]:
        """`outstanding`: calls running or waiting at each node, as this gateway counts them."""
        ranked = rank(session_id, nodes)
        if self.mode == HASH or len(ranked) == 1:
            return ranked
        chosen = self._chosen.get(session_id)
        if chosen is None or chosen not in ranked:
            # min() keeps the first of equals: an idle system places by the hash.
            chosen = min(ranked, key=lambda node: outstanding.get(node, 0))
            self._chosen[session_id] = chosen
            if len(self._chosen) > self.capacity:
                self._chosen.popitem(last=False)
        else:
            self._chosen.move_to_end(session_id)
        if chosen == ranked[0]:
            return ranked
        return [chosen, *(node for node in ranked if node != chosen)]

    def chosen(self, session_id: str) -> str | None:
        """The instance this node sends the session to, if it has placed it."""
        return self._chosen.get(session_id)

    def moved(self, session_id: str, node: str) -> None:
        """A fall-back answered the session's call (its own instance refused): it stays
        there, rather than trying the refusing instance first on every later call."""
        if self.mode == LEAST_BUSY:
            self._chosen[session_id] = node
            self._chosen.move_to_end(session_id)
