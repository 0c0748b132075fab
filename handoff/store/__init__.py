"""The gateway's persistent store: tables (schema), engine and transactions (engine), queries
(repo)."""

from handoff.store.engine import Store

__all__ = ["Store"]
