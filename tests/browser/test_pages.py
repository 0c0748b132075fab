"""The three pages against a live gateway in Debian chromium: borrower chat (/), agent
console (/agent/) and supervisor dashboard (/dashboard/), end to end over real sockets."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    SUPERVISOR,
    UNRESOLVED_HANDOFF_NOTICE,
    UNRESOLVED_PREFIX,
    GatewayFactory,
    Live,
    ScriptedRasa,
    say,
)
from tests.integration.fake_rasa import GREETING_REPLY

pytestmark = [pytest.mark.browser, pytest.mark.integration]

XSS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")


def bubble(page: Any, sender: str, text: str) -> Any:
    """The chat bubble of `sender` (borrower/bot/agent) whose text contains `text`."""
    return page.locator(f".msg.{sender} .bubble", has_text=text)


def session_of(chat: Any) -> str:
    return str(chat.evaluate("localStorage.getItem('loanbot.chat.session')"))


def claim_first(console: Any) -> None:
    console.locator(".queue-item .claim").first.click()
    console.locator("#session").wait_for(state="visible")


def test_sensitive_handoff_chat_close_rate_and_dashboard(live: Live) -> None:
    console = live.console("alice")
    chat = live.chat()
    say(chat, "你好")
    expect(chat.locator(".msg.bot .bubble", has_text=GREETING_REPLY)).to_be_visible()

    say(chat, "我要转人工")
    expect(chat.locator("#status[data-state='queued']")).to_be_visible()
    handed_off = time.monotonic()
    # The console shows the handoff within a second of the borrower being queued.
    console.locator(".queue-item").first.wait_for(timeout=1000)
    assert time.monotonic() - handed_off < 1.0
    expect(console.locator("#handoff-alert")).to_contain_text("新的转人工会话")
    expect(console.locator(".queue-item")).to_contain_text("敏感意图")
    expect(console.locator(".queue-item .preview")).to_have_text("我要转人工")
    expect(chat.locator("#status")).to_contain_text("排队中（第1位）")
    live.shot(chat, "chat-page-queued")
    live.shot(console, "agent-console-queue-alert")

    claim_first(console)
    head = console.locator("#session-head")
    expect(head).to_contain_text("转人工原因：敏感意图")
    expect(head).to_contain_text("意图：要求人工")
    expect(head).to_contain_text("借款金额：50000")
    expect(head).to_contain_text("期限（月）：12")
    expect(console.locator("#transcript .msg.borrower", has_text="我要转人工")).to_be_visible()
    expect(chat.locator("#status[data-state='assigned']")).to_contain_text("小李")

    # Agent typing → borrower sees the indicator; then the message.
    console.locator("#input").press_sequentially("您好，我是客服小李", delay=20)
    expect(chat.locator("#agent-typing")).to_have_text("客服小李正在输入…")
    console.locator("#input").press("Enter")
    expect(chat.locator(".msg.agent .bubble", has_text="您好，我是客服小李")).to_be_visible()
    expect(chat.locator("#agent-typing")).to_be_hidden()

    # Borrower typing → agent sees the indicator; then the message.
    chat.locator("#input").press_sequentially("我想提前还款", delay=20)
    expect(console.locator("#borrower-typing")).to_be_visible()
    chat.click("#send")
    expect(console.locator("#transcript .msg.borrower", has_text="我想提前还款")).to_be_visible()
    live.shot(chat, "chat-page-with-agent")
    live.shot(console, "agent-console-chat")

    console.click("#close-resolved")
    expect(console.locator("#session-head")).to_contain_text("已结束")
    expect(chat.locator("#csat")).to_be_visible()
    chat.click("#csat-stars button[data-score='5']")
    chat.fill("#csat-comment", "服务很好")
    live.shot(chat, "chat-page-csat-prompt")
    chat.click("#csat-submit")
    expect(chat.locator(".notice", has_text="感谢您的评价（5分）")).to_be_visible()
    expect(console.locator("#handoff-alert")).to_contain_text("借款人评分：5分")
    live.shot(chat, "chat-page-csat-done")
    console.click(".held-item .remove")
    expect(console.locator(".held-item")).to_have_count(0)
    expect(console.locator("#no-session")).to_be_visible()

    board = live.dashboard()
    expect(board.locator("#kpi-conversations")).to_have_text("1")
    expect(board.locator("#kpi-handoffs")).to_have_text("1")
    expect(board.locator("#kpi-csat")).to_have_text("5.00分")
    expect(board.locator("#kpi-containment")).to_have_text("0.0%")
    expect(board.locator("#kpi-handle-sub")).to_contain_text("1次服务")
    expect(board.locator("#reasons tbody")).to_contain_text("敏感意图")
    board.wait_for_timeout(300)  # let Chart.js finish its first layout for the screenshot
    live.shot(board, "dashboard-after-rating")
    assert not live.dialogs and not live.errors, (live.dialogs, live.errors)


def test_a_long_queue_shows_its_head_and_counts_the_rest(
    browser: Any, scripted_rasa: ScriptedRasa, gateway_factory: GatewayFactory,
    artifacts_dir: Any,
) -> None:
    """With HANDOFF_QUEUE_VIEW_LIMIT=2 the console shows the first two sessions, counts all
    three, says how many wait behind, and still alerts on a hand-off queued out of view."""
    server = gateway_factory(scripted_rasa.url, queue_view_limit="2")
    live = Live(server, scripted_rasa, browser, artifacts_dir, [], [], [])
    try:
        console = live.console("alice")
        for count in (1, 2, 3):
            chat = live.chat()
            say(chat, "我要转人工")
            expect(chat.locator("#status[data-state='queued']")).to_be_visible()
            expect(console.locator("#queue-count")).to_have_text(str(count))
        expect(console.locator(".queue-item")).to_have_count(2)
        expect(console.locator("#queue-more")).to_have_text(
            "另有1个会话在后面排队，接入前面的会话后依次显示")
        expect(console.locator("#handoff-alert")).to_contain_text("新的转人工会话已排队，当前共3个")
        live.shot(console, "agent-console-long-queue")

        claim_first(console)
        expect(console.locator("#queue-count")).to_have_text("2")
        expect(console.locator(".queue-item")).to_have_count(2)
        expect(console.locator("#queue-more")).to_have_count(0)
        # the session that moved into view is not announced as a new hand-off
        expect(console.locator(".queue-item.new")).to_have_count(0)
    finally:
        for context in live.contexts:
            context.close()


def test_unresolved_turns_handoff_and_return_to_bot(live: Live) -> None:
    console = live.console("bob")
    chat = live.chat()
    for text in ("第一个看不懂的问题", "第二个看不懂的问题"):
        say(chat, text)
        expect(bubble(chat, "bot", f"{UNRESOLVED_PREFIX}{text}")).to_be_visible()
    say(chat, "第三个看不懂的问题")
    expect(chat.locator("#status[data-state='queued']")).to_be_visible()
    expect(chat.locator(".msg.bot .bubble", has_text=UNRESOLVED_HANDOFF_NOTICE)).to_be_visible()
    expect(console.locator(".queue-item")).to_contain_text("多轮未解决")

    claim_first(console)
    expect(console.locator("#session-head")).to_contain_text("转人工原因：多轮未解决")
    expect(console.locator("#session-head")).to_contain_text("申请编号：LN20261123001")
    console.click("#close-bot")
    expect(console.locator("#session-head")).to_contain_text("已转回智能助手")
    expect(chat.locator("#status[data-state='bot']")).to_be_visible()
    expect(chat.locator(".notice", has_text="智能助手将继续为您服务")).to_be_visible()
    assert any(e.get("event") == "resume" for e in live.rasa.events_for(session_of(chat)))

    say(chat, "你好")
    expect(chat.locator(".msg.bot .bubble", has_text=GREETING_REPLY)).to_have_count(1)
    live.shot(chat, "chat-page-returned-to-bot")
    assert not live.dialogs and not live.errors, (live.dialogs, live.errors)


def test_xss_payloads_render_as_text_everywhere(live: Live) -> None:
    console = live.console("alice")
    chat = live.chat()
    for text in (*XSS, "<b>粗体</b>"):
        say(chat, text)
        expect(chat.locator(".msg.borrower .bubble", has_text=text)).to_be_visible()
    expect(chat.locator("#status[data-state='queued']")).to_be_visible()
    # The bot echoed the first two as text too.
    expect(bubble(chat, "bot", f"{UNRESOLVED_PREFIX}{XSS[1]}")).to_be_visible()

    expect(console.locator(".queue-item .preview")).to_have_text("<b>粗体</b>")
    claim_first(console)
    for text in XSS:
        expect(console.locator("#transcript .msg.borrower .bubble", has_text=text)).to_be_visible()
    console.fill("#input", "<img src=x onerror=alert(2)>")
    console.locator("#input").press("Enter")
    expect(bubble(chat, "agent", "<img src=x onerror=alert(2)>")).to_be_visible()
    console.fill("#note-input", "<script>alert(3)</script>")
    console.click("#note-form button")
    expect(console.locator("#notes li", has_text="<script>alert(3)</script>")).to_be_visible()

    board = live.dashboard()
    table = board.locator("#unresolved tbody")
    for text in XSS:
        expect(table.locator("td", has_text=text)).to_be_visible()

    live.shot(chat, "chat-page-xss-as-text")
    live.shot(console, "agent-console-xss-as-text")
    live.shot(board, "dashboard-xss-as-text")
    for page in (chat, console, board):
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("b", has_text="粗体").count() == 0
        assert page.locator("#log script, #transcript script, #unresolved script").count() == 0
    assert not live.dialogs, live.dialogs
    assert not live.errors, live.errors
    # Stored verbatim: the gateway accepted them as plain text.
    session_id = session_of(chat)
    stored = live.server.stored_texts(session_id)
    assert ("borrower", XSS[0]) in stored and ("borrower", XSS[1]) in stored


def test_forbidden_phrase_is_blocked_with_reason(live: Live) -> None:
    console = live.console("alice")
    chat = live.chat()
    say(chat, "转人工")
    claim_first(console)
    session_id = session_of(chat)
    before = live.server.message_count(session_id)

    console.fill("#input", "放心，我们包過的，保 证 下 款")  # Traditional + spaces still match
    console.locator("#input").press("Enter")
    box = console.locator("#compliance[data-kind='block']")
    expect(box).to_contain_text("消息未发送")
    expect(box).to_contain_text("不得承诺审批或放款结果")
    expect(console.locator("#input")).to_have_value("放心，我们包過的，保 证 下 款")
    live.shot(console, "agent-console-compliance-blocked")
    chat.wait_for_timeout(500)
    assert live.server.message_count(session_id) == before
    expect(chat.locator(".msg.agent")).to_have_count(0)

    console.fill("#input", "这款产品零利息哦")
    console.locator("#input").press("Enter")
    expect(console.locator("#compliance[data-kind='warn']")).to_contain_text("绝对化用语")
    expect(chat.locator(".msg.agent .bubble", has_text="这款产品零利息哦")).to_be_visible()
    assert ("agent", "这款产品零利息哦") in live.server.stored_texts(session_id)


def test_schedule_table_canned_reply_and_callback(live: Live) -> None:
    chat = live.chat()
    say(chat, "帮我算一下还款计划")
    table = chat.locator(".schedule table")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("caption")).to_contain_text("等额本息")
    expect(table.locator("tbody tr").nth(2)).to_contain_text("3353.53")
    live.shot(chat, "chat-page-schedule")

    # No agent online → callback offer; the borrower books one for tomorrow (Beijing).
    say(chat, "转人工")
    expect(chat.locator("#callback")).to_be_visible()
    tomorrow = (datetime.now(timezone.utc) + timedelta(hours=8, days=1)).date().isoformat()
    chat.fill("#cb-phone", "13812345678")
    chat.fill("#cb-date", tomorrow)
    chat.fill("#cb-start", "10:00")
    chat.fill("#cb-end", "12:00")
    live.shot(chat, "chat-page-callback-form")
    chat.click("#cb-submit")
    expect(chat.locator(".notice", has_text="已预约回拨")).to_contain_text("138****5678")

    console = live.console("alice")
    expect(console.locator(".callback-item")).to_contain_text("138****5678")
    claim_first(console)
    console.fill("#input", "/repay")
    expect(console.locator("#canned")).to_contain_text("还款方式")
    console.locator("#input").press("Enter")  # picks the highlighted canned reply
    expect(console.locator("#input")).to_have_value(
        "您可以在App“借款-还款”中选择主动还款，也可以保持绑定银行卡余额充足，到期日系统会自动扣款。")
    console.locator("#input").press("Enter")
    expect(chat.locator(".msg.agent .bubble", has_text="主动还款")).to_be_visible()
    live.shot(console, "agent-console-canned")
    assert not live.dialogs and not live.errors, (live.dialogs, live.errors)


def test_dashboard_refuses_plain_agents(live: Live) -> None:
    page = live.page("/dashboard/")
    from tests.browser.conftest import login

    login(page, "alice")
    expect(page.locator("#login-error")).to_have_text("仅主管可查看数据看板")
    assert SUPERVISOR[0] == "sam"


def test_webchat_widget_page_still_works_under_csp(live: Live) -> None:
    """/webchat.html keeps the vendored rasa-webchat widget reachable (same CSP as our pages)."""
    page = live.page("/webchat.html", mobile=True)
    page.click(".rw-launcher")
    page.get_by_text(GREETING_REPLY).wait_for()
    page.fill(".rw-new-message", "看看按钮")
    page.keyboard.press("Enter")
    page.locator(".rw-reply", has_text="信用贷").wait_for()
    live.shot(page, "webchat-widget-page")
    assert not live.errors, live.errors


def test_reopened_chat_page_restores_history_once_and_gets_missed_messages(live: Live) -> None:
    console = live.console("carol")
    chat = live.chat()
    say(chat, "你好")
    expect(bubble(chat, "bot", GREETING_REPLY)).to_be_visible()
    say(chat, "转人工")
    claim_first(console)
    expect(chat.locator("#status[data-state='assigned']")).to_be_visible()
    context = chat.context
    chat.close()
    console.fill("#input", "您还在吗？")
    console.locator("#input").press("Enter")
    expect(console.locator("#transcript .msg.agent", has_text="您还在吗？")).to_be_visible()

    again = live.open_in(context, "/")
    again.locator("body[data-session='ready']").wait_for()
    expect(bubble(again, "agent", "您还在吗？")).to_have_count(1)
    expect(bubble(again, "bot", GREETING_REPLY)).to_have_count(1)
    expect(bubble(again, "borrower", "转人工")).to_have_count(1)
    expect(again.locator("#status[data-state='assigned']")).to_contain_text("小陈")
    # Seqs on screen are strictly increasing: history and replay merged in order.
    seqs = again.eval_on_selector_all("#log [data-seq]", "els => els.map(e => +e.dataset.seq)")
    assert seqs == sorted(set(seqs)) and len(seqs) >= 5
    assert not live.dialogs and not live.errors, (live.dialogs, live.errors)


def test_transfer_to_agent_with_notes_and_presence(live: Live) -> None:
    alice = live.console("alice")
    carol = live.console("carol")
    chat = live.chat()
    say(chat, "转人工")
    claim_first(alice)
    alice.fill("#note-input", "借款人想协商分期")
    alice.click("#note-form button")
    expect(alice.locator("#notes li", has_text="借款人想协商分期")).to_be_visible()

    alice.select_option("#transfer-target", "agent:carol")
    alice.click("#transfer-form button")
    expect(alice.locator("#session-head")).to_contain_text("已转接")
    expect(carol.locator("#handoff-alert")).to_contain_text("已转接给您")
    expect(carol.locator("#session-head")).to_contain_text("转人工原因：敏感意图")
    expect(carol.locator("#notes li", has_text="借款人想协商分期")).to_be_visible()
    expect(chat.locator("#status[data-state='assigned']")).to_contain_text("小陈")
    carol.fill("#input", "您好，我是小陈，接着为您处理")
    carol.locator("#input").press("Enter")
    expect(bubble(chat, "agent", "接着为您处理")).to_be_visible()
    live.shot(carol, "agent-console-after-transfer")

    # 下线 hands the held session back to the queue, where alice sees it again.
    carol.select_option("#presence", "offline")
    expect(alice.locator(".queue-item")).to_contain_text("优先")
    expect(chat.locator("#status[data-state='queued']")).to_be_visible()
    assert not live.dialogs and not live.errors, (live.dialogs, live.errors)
