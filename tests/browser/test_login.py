"""The one staff log-in (handoff/static/js/login.js) on all three staff pages, in Debian
chromium against a live gateway: a wrong password shows the server's error and keeps the
page closed; signing in opens the page; a reload resumes it from the tab's token; logging
out closes it, and a reload after that stays closed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SUPERVISOR, Live, login
from tests.browser.test_trainer_page import add_trainer

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# (path, user, the page's own view, what shows once the page has loaded its data)
PAGES = (
    ("/agent/", "alice", "#console-view", "#conn[data-state='online']"),
    ("/dashboard/", SUPERVISOR[0], "#board-view", "#updated:has-text('更新于')"),
    ("/trainer/", "tina", "#inbox-view", "#updated:has-text('更新于')"),
)


def test_every_staff_page_logs_in_resumes_and_logs_out_the_same_way(live: Live) -> None:
    add_trainer(live)
    for path, username, view_id, loaded in PAGES:
        page = live.page(path)
        login_view, view, error = (page.locator("#login-view"), page.locator(view_id),
                                   page.locator("#login-error"))

        login(page, username, "not-the-password")
        expect(error).to_have_text("用户名或密码错误")
        expect(view).to_be_hidden()

        login(page, username)
        expect(view).to_be_visible()
        expect(login_view).to_be_hidden()
        expect(error).to_have_text("")
        expect(page.locator("#login-pass")).to_have_value("")
        expect(page.locator(loaded)).to_be_visible()

        page.reload()  # the token kept in sessionStorage opens the page again
        expect(view).to_be_visible()
        expect(login_view).to_be_hidden()
        expect(page.locator(loaded)).to_be_visible()

        page.click("#logout")
        expect(login_view).to_be_visible()
        expect(view).to_be_hidden()
        page.reload()  # the token is gone: the form stays
        expect(login_view).to_be_visible()
        expect(view).to_be_hidden()
    assert not live.dialogs and not live.errors, (live.dialogs, live.errors)
