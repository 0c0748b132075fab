"""Whether the installed python-engineio is the release a patch of ours was written for.

`handoff/eio_websocket.py` and `handoff/eio_ping.py` replace parts of engine.io's socket that
are not public API; on any other release they stay out and engine.io's own code runs."""

from __future__ import annotations

import logging
from importlib import metadata

log = logging.getLogger(__name__)


def installed_is(release: str, keeping: str) -> bool:
    """True if python-engineio `release` is installed; else warn that engine.io keeps its
    own `keeping` and return False."""
    version = metadata.version("python-engineio")
    if version != release:
        log.warning("python-engineio %s is not %s: keeping its own %s", version, release, keeping)
        return False
    return True
