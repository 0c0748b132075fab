"""Password hashing and signed, expiring tokens."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt
import pytest

from handoff.auth import hash_password, issue_token, verify_password, verify_token
from handoff.errors import AuthError, ValidationError

SECRET = "s" * 40
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


def test_hash_and_verify() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert hash_password("correct horse") != stored  # salted


@pytest.mark.parametrize("stored", [None, "", "garbage", "md5$1$2$3$abc$def"])
def test_verify_rejects_missing_or_malformed_hash(stored: str | None) -> None:
    assert not verify_password("whatever1", stored)


def test_short_password_rejected() -> None:
    with pytest.raises(ValidationError):
        hash_password("short")


def test_token_round_trip() -> None:
    token, expires = issue_token("alice", SECRET, 3600, NOW, role="agent")
    claims = verify_token(token, SECRET, NOW + timedelta(seconds=10))
    assert claims["sub"] == "alice" and claims["role"] == "agent"
    assert expires == NOW + timedelta(hours=1)


def test_expired_token() -> None:
    token, _ = issue_token("alice", SECRET, 60, NOW)
    with pytest.raises(AuthError):
        verify_token(token, SECRET, NOW + timedelta(seconds=61))


def test_forged_token() -> None:
    token, _ = issue_token("alice", "x" * 40, 60, NOW)
    with pytest.raises(AuthError):
        verify_token(token, SECRET, NOW)


def test_alg_none_and_tampered_tokens_rejected() -> None:
    unsigned = jwt.encode({"sub": "alice", "iss": "loanbot-handoff", "iat": 0,
                           "exp": 9_999_999_999}, key="", algorithm="none")
    token, _ = issue_token("alice", SECRET, 60, NOW)
    head, body, sig = token.split(".")
    tampered = ".".join([head, body[:-2] + ("AA" if body[-2:] != "AA" else "BB"), sig])
    for bad in (unsigned, tampered, "", "not.a.token"):
        with pytest.raises(AuthError):
            verify_token(bad, SECRET, NOW)
