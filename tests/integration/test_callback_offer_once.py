"""Through the real gateway: a borrower queued while no agent is online hears about the
phone callback once, and is offered it again (to that socket only) after a reconnect."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Helpers

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_one_callback_offer_and_again_after_a_reconnect(h: Helpers) -> None:
    b = await h.borrower()
    await h.queued(b)
    offer = await b.wait_for("callback_offer")
    assert offer["reason"] == "no_agents"
    await b.no_event("callback_offer", seconds=0.5)
    sentences = [t for t in b.texts() if "回拨" in t]
    assert sentences == [offer["text"]], b.texts()
    other_tab = await h.borrower(b.session_id)
    await other_tab.wait_for("callback_offer")  # its own resume
    await b.close()
    again = await h.borrower(b.session_id)
    assert (await again.wait_for("callback_offer"))["reason"] == "no_agents"
    await other_tab.no_event("callback_offer", seconds=0.5)
