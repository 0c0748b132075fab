"""Checks of what clients send the gateway: bad input gets a clear (Chinese) error early."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from handoff.errors import ValidationError
from handoff.settings import ServiceHours

ROLES = ("agent", "supervisor", "trainer")
PRESENCES = ("online", "away", "offline")
CALLBACK_STATUSES = ("pending", "done", "cancelled")
MAX_NOTE_LENGTH = 4000
MAX_COMMENT_LENGTH = 500
MAX_CLIENT_MSG_ID = 128
CALLBACK_HORIZON = timedelta(days=14)
SESSION_ID = re.compile(r"^[A-Za-z0-9_\-]{16,64}$")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{2,63}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def normalise_mobile(phone: Any) -> str:
    """A mainland mobile number as 11 digits; accepts spaces, hyphens and +86/0086/86."""
    if not isinstance(phone, str):
        raise ValidationError("phone must be text", message_zh="请输入正确的手机号码")
    digits = re.sub(r"[\s\-()]", "", phone)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    if not _MOBILE.match(digits):
        raise ValidationError("not a mainland mobile number", message_zh="请输入正确的手机号码")
    return digits


def check_identity(identity: Any) -> str | None:
    if identity is None:
        return None
    if not isinstance(identity, str) or not identity.strip() or len(identity) > 128:
        raise ValidationError("identity must be 1-128 characters")
    return identity


def check_client_msg_id(client_msg_id: Any) -> str | None:
    if client_msg_id is None:
        return None
    if (not isinstance(client_msg_id, str) or not client_msg_id
            or len(client_msg_id) > MAX_CLIENT_MSG_ID):
        raise ValidationError(f"client_msg_id must be 1-{MAX_CLIENT_MSG_ID} characters")
    return client_msg_id


def check_text(text: Any, max_length: int) -> str:
    """A chat message: not blank, at most `max_length` characters."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("empty message", message_zh="消息不能为空")
    if len(text) > max_length:
        raise ValidationError(
            "message too long",
            message_zh=f"消息过长（最多{max_length}字），请分几条发送",
        )
    return text


def check_callback_window(
    start: datetime, end: datetime, now: datetime, hours: ServiceHours
) -> None:
    """A callback window: aware datetimes, in the future, within 14 days, inside one day's
    service hours."""
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        raise ValidationError("callback window needs two datetimes")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationError("callback window needs timezone-aware datetimes")
    if end <= start or end <= now:
        raise ValidationError("callback window must end after it starts and in the future",
                              message_zh="请选择未来的回拨时间段")
    if start > now + CALLBACK_HORIZON:
        raise ValidationError("callback window too far ahead",
                              message_zh="只能预约14天内的回拨")
    local_start, local_end = start.astimezone(hours.tz), end.astimezone(hours.tz)
    if (local_start.date() != local_end.date() or local_start.time() < hours.start
            or local_end.time() > hours.end):
        raise ValidationError(
            "callback window outside service hours",
            message_zh=(f"请在服务时间（{hours.start.strftime('%H:%M')}-"
                        f"{hours.end.strftime('%H:%M')}）内选择回拨时间"),
        )
