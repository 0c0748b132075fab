"""Borrower identity from a token the lender's app signs: HS256 JWT with `sub` and `exp`.

Why: a session is bound to the identity that opened it (`HandoffService.open_session`), and
an agent sees that identity's earlier sessions. The identity must therefore come from
something a borrower cannot forge — a short-lived token the lender's backend signs with a
secret it shares with the gateway (`HANDOFF_BORROWER_JWT_SECRET`). Without a secret the
gateway runs anonymous-only; with `HANDOFF_REQUIRE_BORROWER_TOKEN` it serves nobody without
a valid token. Minting is described in docs/gateway.md.

Pure: the clock is injected, so expiry is checked against the same time as the service.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt

from handoff.errors import AuthError

MAX_TOKEN_LENGTH = 4096
MAX_SUBJECT_LENGTH = 128
# Leeway for clocks of the lender's backend and the gateway disagreeing a little.
LEEWAY_SECONDS = 30
_BAD_SUBJECT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")

NEEDS_LOGIN = "请先登录后再咨询"
TOKEN_INVALID = "身份凭证无效，请重新登录后再咨询"
TOKEN_EXPIRED = "登录已过期，请重新登录后再咨询"
NOT_CONFIGURED = "暂不支持登录用户咨询，请联系平台客服"


@dataclass(frozen=True)
class BorrowerTokens:
    """Turns an optional borrower token into an identity (or None for anonymous)."""

    secret: str | None
    required: bool
    clock: Callable[[], datetime]

    def identity(self, token: Any) -> str | None:
        """The token's `sub`; None when no token was given and anonymous use is allowed.

        Raises AuthError (code `auth_failed`, Chinese message) for a missing token when one is
        required, and for any token that is malformed, forged, expired or not yet valid. A
        token given to a gateway without a secret is refused rather than ignored, so a lender
        never believes a borrower is identified when they are not.
        """
        if token is None or token == "":
            if self.required:
                raise AuthError("borrower token required", message_zh=NEEDS_LOGIN)
            return None
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise AuthError("borrower token is not a short string", message_zh=TOKEN_INVALID)
        if not self.secret:
            raise AuthError("borrower tokens are not configured", message_zh=NOT_CONFIGURED)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],  # never "none", never a key-confusion algorithm
                options={"require": ["sub", "exp"], "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False, "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid borrower token: {exc.__class__.__name__}",
                            message_zh=TOKEN_INVALID) from None
        now = int(self.clock().timestamp())
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            raise AuthError("borrower token exp is not a number", message_zh=TOKEN_INVALID)
        if exp + LEEWAY_SECONDS <= now:
            raise AuthError("borrower token expired", message_zh=TOKEN_EXPIRED)
        if nbf is not None and (isinstance(nbf, bool) or not isinstance(nbf, (int, float))
                                or nbf - LEEWAY_SECONDS > now):
            raise AuthError("borrower token not yet valid", message_zh=TOKEN_INVALID)
        subject = claims.get("sub")
        if (not isinstance(subject, str) or not subject.strip()
                or len(subject) > MAX_SUBJECT_LENGTH or _BAD_SUBJECT.search(subject)):
            raise AuthError("borrower token sub is not a usable id", message_zh=TOKEN_INVALID)
        return subject


def mint_borrower_token(subject: str, secret: str, now: datetime, ttl_seconds: int = 900,
                        **claims: Any) -> str:
    """What a lender's backend does (shown here for tests and the docs' example)."""
    payload = {**claims, "sub": subject, "iat": int(now.timestamp()),
               "exp": int(now.timestamp()) + ttl_seconds}
    return jwt.encode(payload, secret, algorithm="HS256")
