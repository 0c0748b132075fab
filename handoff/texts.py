"""The sentences the gateway itself says to borrowers, in the borrower's own script."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.engine import Connection

from bot.text import Script, detect_script, to_script
from handoff.store import repo


class Texts:
    """Every sentence the gateway itself says to borrowers (Chinese)."""

    QUEUED = "正在为您转接人工客服，请稍候。"
    BOT_UNAVAILABLE = "智能助手暂时无法回复，正在为您转接人工客服，请稍候。"
    AGENT_JOINED = "人工客服{name}为您服务。"
    TRANSFERRED_QUEUE = "正在为您转接其他客服，请稍候。"
    TRANSFERRED_AGENT = "已为您转接至客服{name}。"
    AGENT_LOST = "客服连接中断，正在为您重新转接，您将优先接入。"
    CLOSED = "本次人工服务已结束，感谢您的耐心。"
    RETURNED_TO_BOT = "人工服务已结束，智能助手将继续为您服务。"
    CSAT_PROMPT = "请为本次人工服务打分（1-5分，5分为非常满意）。"
    WAIT_SOON = "即将为您接入人工客服。"
    WAIT_ETA = "您前面还有{ahead}位用户，预计等待约{minutes}分钟。"
    # Wait only: the callback offer is the separate `callback_offer` sentence (one offer).
    WAIT_UNKNOWN = "当前暂无客服在线，暂时无法估计等待时间，请您耐心等待。"
    OFFER_OUTSIDE_HOURS = (
        "当前不在人工服务时间（每日{start}-{end}），您可以预约电话回拨，我们将在服务时间内联系您。"
    )
    OFFER_NO_AGENTS = "当前人工客服繁忙，您可以继续等待，或预约电话回拨。"


@lru_cache(maxsize=4096)
def script_of(text: str) -> Script:
    """`detect_script`, remembered per text: every change of the queue tells each waiting
    borrower their place again, in the script of their last message, which has not changed
    (≈ 35 µs a text otherwise, times the length of the queue, on every hand-off and claim)."""
    return detect_script(text)


def borrower_script(conn: Connection, session_id: str) -> str:
    """The script (simplified/traditional) of the borrower's latest message."""
    return script_of(repo.last_borrower_text(conn, session_id) or "")


def localise(conn: Connection, session_id: str, text: str) -> str:
    """A gateway sentence in the borrower's script (Traditional writers read Traditional)."""
    return to_script(text, borrower_script(conn, session_id))
