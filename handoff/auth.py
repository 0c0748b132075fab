"""Agent passwords (scrypt) and signed, expiring tokens (HS256 with the settings secret).

Stored hash format: `scrypt$n$r$p$<salt b64>$<hash b64>` so the cost can be raised later
without breaking existing hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt

from handoff.errors import AuthError, ValidationError

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_DKLEN = 32
TOKEN_ISSUER = "loanbot-handoff"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password`. Raises ValidationError for weak/oversized input."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"password shorter than {MIN_PASSWORD_LENGTH}",
            message_zh=f"密码至少需要{MIN_PASSWORD_LENGTH}个字符",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError("password too long", message_zh="密码过长")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(
        ["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)]
    )


# A fixed hash to compare against when the user is unknown, so timing does not reveal
# which usernames exist.
_DUMMY_HASH = "scrypt$16384$8$1$" + "A" * 22 + "$" + "A" * 43


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored`; compares in constant time. A None or malformed
    stored hash still does the scrypt work and returns False."""
    target = stored if stored else _DUMMY_HASH
    try:
        scheme, n_s, r_s, p_s, salt_s, digest_s = target.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt, expected = _unb64(salt_s), _unb64(digest_s)
        if scheme != "scrypt":
            raise ValueError(scheme)
    except ValueError:
        _scrypt(password[:MAX_PASSWORD_LENGTH], b"0" * 16, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        return False
    actual = _scrypt(password[:MAX_PASSWORD_LENGTH], salt, n, r, p)
    return hmac.compare_digest(actual, expected) and stored is not None


def issue_token(
    subject: str, secret: str, ttl_seconds: int, now: datetime, **claims: Any
) -> tuple[str, datetime]:
    """A signed token for `subject` valid for `ttl_seconds` from `now`; returns (token, expiry)."""
    expires = now + timedelta(seconds=ttl_seconds)
    payload = {
        **claims,
        "sub": subject,
        "iss": TOKEN_ISSUER,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_urlsafe(8),
    }
    return jwt.encode(payload, secret, algorithm="HS256"), expires


def verify_token(token: str, secret: str, now: datetime) -> dict[str, Any]:
    """The claims of a valid token; AuthError when expired, forged or malformed."""
    if not isinstance(token, str) or not token:
        raise AuthError("missing token")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=TOKEN_ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc.__class__.__name__}") from None
    # Expiry is checked against the injected clock so tests and the service agree on time.
    if int(claims["exp"]) <= int(now.astimezone(timezone.utc).timestamp()):
        raise AuthError("token expired", message_zh="登录已过期，请重新登录")
    if not isinstance(claims.get("sub"), str):
        raise AuthError("token subject is not a string")
    return claims


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=64 * 1024 * 1024
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
