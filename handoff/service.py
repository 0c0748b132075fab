"""HandoffService: the gateway core. It owns every conversation; the transport calls it.

API CHANGES since the first published version (11:20 UTC), all before 11:35:
- agent_connected() returns ConnectResult (agent, queue snapshot, transcripts of held
  sessions, effects) instead of a bare QueueSnapshot.
- added create_agent() (used by the CLI and tests), recover_after_restart() (11:40; call it
  once at start-up); CallbackView gained `phone`
  (full number for supervisors only, else None); Route gained "borrower".

How the transport uses it (details in docs/gateway.md, effect types in handoff/model.py):
- Every method is synchronous, thread-safe, and does its database work in one transaction.
  Call it from async code through `handoff.store_calls` (on the loop for SQLite, in a
  worker thread for a networked database).
- Every method returns effects; deliver them in order after the call returns. Nothing is
  relayed by the service itself, and every message is stored before it is returned.
- Errors are `handoff.errors.HandoffError` subclasses; send `err.to_dict()` to the client.
- Call `recover_after_restart()` once at start-up, then `tick()` about once a second: it
  expires agents' reconnect grace periods.
- Agent ids are usernames. Borrower `identity` is the lender-app user id (or None if anonymous).
- A message's sender gets it back in the method's result (the ack); effects carry it only to
  the other side.

Where the code is: this module only composes the flows (one job each) and re-exports the names
callers import from here:
- handoff/borrower_flows.py  sessions, borrower messages, bot replies, hand-off, CSAT, callbacks
- handoff/agent_flows.py     agent accounts/log-in, claim, messages, notes, transfer, close
- handoff/presence_flows.py  agent sockets/presence, grace periods, gateway nodes, recovery
- handoff/service_core.py    shared state and the steps that change a session
- handoff/queue_view.py      queue order, positions/ETAs, snapshots, callback offer (reads)
- handoff/views.py, texts.py, validation.py  masked views, borrower-facing sentences, checks
"""

from __future__ import annotations

from handoff.agent_flows import AgentFlows
from handoff.borrower_flows import BorrowerFlows
from handoff.presence_flows import PresenceFlows
from handoff.service_core import RESUME_EVENTS, Clock
from handoff.texts import Texts
from handoff.validation import normalise_mobile

__all__ = ["RESUME_EVENTS", "Clock", "HandoffService", "Texts", "normalise_mobile"]


class HandoffService(BorrowerFlows, AgentFlows, PresenceFlows):
    """Decides what happens to each conversation and records it; returns effects."""
