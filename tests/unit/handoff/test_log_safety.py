"""Logs never carry personal numbers: tracebacks are masked by the filter, and database
errors do not include the parameters (message texts) they were writing."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from handoff.masking import MaskingFilter
from handoff.store import Store, repo
from handoff.store.schema import messages

CARD = "6222021234567890"


def test_tracebacks_are_masked_by_the_filter() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("test.log_safety")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError(f"bad card {CARD}")
        except ValueError:
            logger.exception("failed for %s", "13812345678")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "ValueError: bad card ************7890" in text
    assert CARD not in text and "13812345678" not in text and "138****5678" in text


def test_database_errors_hide_the_parameters(store: Store) -> None:
    now = datetime.now(timezone.utc)
    with store.write() as conn:
        repo.insert_session(conn, "s" * 32, None, now)
        first = repo.append_message(conn, "s" * 32, episode=0, sender="borrower", text="a",
                                    now=now)
    row = dict(session_id="s" * 32, seq=first.seq, episode=0, sender="borrower",
               text=f"卡号{CARD}", created_at=now)
    with pytest.raises(IntegrityError) as info, store.write() as conn:
        conn.execute(messages.insert().values(**row))  # the same seq again
    assert "parameters" in str(info.value).lower() or "hidden" in str(info.value).lower()
    assert CARD not in str(info.value)
