"""The handoff gateway: owns every borrower conversation and routes it to the bot or a human.

The core (this package minus the transport) is I/O-free apart from its database: the
transport calls `HandoffService` and delivers the effects it returns. See docs/gateway.md.
"""

from handoff.errors import HandoffError

__all__ = ["HandoffError"]
