"""GET /api/trainer/inbox: the trainer inbox (bot/trainer/inbox.py) for the console page.

Trainers and supervisors only (`Authorization: Bearer <token from /api/login>`). Texts are
masked by the inbox itself. Items the gateway has no intent for get the running model's guess
from Rasa's /model/parse when Rasa answers; otherwise they are listed without one.
`?all=1` includes items already exported to a batch; `?limit=` caps the list (default 200).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from handoff.errors import HandoffError, PermissionDenied, ValidationError

log = logging.getLogger(__name__)

TRAINER_ROLES = ("trainer", "supervisor")
DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationError("limit", message_zh=f"limit 应为 1 到 {MAX_LIMIT} 之间的整数")
    return int(raw)


def inbox_payload(gateway: Any, token: str, query: dict[str, list[str]]) -> dict[str, Any]:
    """Check the caller's role and build the inbox (blocking: run it in a thread)."""
    from bot.trainer.inbox import build_inbox
    from bot.trainer.rasa_api import RasaApi, RasaApiError

    agent = gateway.service.agent_from_token(token)
    if agent.role not in TRAINER_ROLES:
        raise PermissionDenied("trainer inbox needs the trainer role",
                               message_zh="仅训练师或主管可查看训练收件箱")
    limit = parse_limit((query.get("limit") or [""])[0])
    include_exported = (query.get("all") or ["0"])[0] in ("1", "true")
    items = build_inbox(gateway.store, include_exported=include_exported)[:limit]
    settings = gateway.settings
    api = RasaApi(settings.rasa_url, settings.rasa_token, timeout_seconds=5.0)
    predicted = True
    if any(item.intent is None for item in items):
        try:
            predictions = api.predict([i.text for i in items if i.intent is None])
            for item in items:
                if item.intent is None:
                    item.intent, item.confidence = predictions.get(item.text, (None, None))
        except RasaApiError as exc:
            predicted = False
            log.warning("trainer inbox: no predictions, Rasa unavailable: %s", exc)
    return {"items": [item.to_dict() for item in items], "predicted": predicted}


async def handle(gateway: Any, token: str, query: dict[str, list[str]]
                 ) -> tuple[int, dict[str, Any]]:
    try:
        body = await asyncio.to_thread(inbox_payload, gateway, token, query)
    except HandoffError as err:
        status = {"auth_failed": 401, "forbidden": 403}.get(err.code, 400)
        return status, err.to_dict()
    return 200, body
