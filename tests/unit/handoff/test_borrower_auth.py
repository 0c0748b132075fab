"""Borrower tokens (handoff/borrower_auth.py) and their settings: what is accepted, what is
refused, and that the refusal is a clear Chinese `auth_failed`."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import timedelta

import jwt
import pytest

from handoff.borrower_auth import (
    NEEDS_LOGIN,
    NOT_CONFIGURED,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    BorrowerTokens,
    mint_borrower_token,
)
from handoff.errors import AuthError, ConfigError
from handoff.masking import MaskingFilter, redact_url_secrets
from handoff.settings import Settings

from .conftest import START, FakeClock

SECRET = secrets.token_urlsafe(64)


def tokens(required: bool = False, secret: str | None = SECRET) -> BorrowerTokens:
    return BorrowerTokens(secret, required, FakeClock())


def refused(checker: BorrowerTokens, token: object) -> AuthError:
    with pytest.raises(AuthError) as info:
        checker.identity(token)
    assert info.value.code == "auth_failed"
    return info.value


def test_valid_token_gives_its_subject() -> None:
    assert tokens().identity(mint_borrower_token("user-42", SECRET, START)) == "user-42"


def test_no_token_is_anonymous_unless_required() -> None:
    assert tokens().identity(None) is None
    assert tokens().identity("") is None
    assert refused(tokens(required=True), None).message_zh == NEEDS_LOGIN


def test_expired_token_is_refused_after_the_leeway() -> None:
    checker = tokens()
    token = mint_borrower_token("user-42", SECRET, START - timedelta(seconds=900),
                                ttl_seconds=890)  # expired 10 s ago: inside the leeway
    assert checker.identity(token) == "user-42"
    old = mint_borrower_token("user-42", SECRET, START - timedelta(hours=1), ttl_seconds=60)
    assert refused(checker, old).message_zh == TOKEN_EXPIRED


@pytest.mark.parametrize("make", [
    lambda: mint_borrower_token("user-42", "another-secret-" + "x" * 32, START),  # forged
    lambda: jwt.encode({"sub": "u", "exp": 2**40}, SECRET, algorithm="HS512"),  # other alg
    lambda: jwt.encode({"sub": "u"}, SECRET, algorithm="HS256"),  # no exp
    lambda: jwt.encode({"exp": 2**40}, SECRET, algorithm="HS256"),  # no sub
    lambda: jwt.encode({"sub": "", "exp": 2**40}, SECRET, algorithm="HS256"),
    lambda: jwt.encode({"sub": "x" * 129, "exp": 2**40}, SECRET, algorithm="HS256"),
    lambda: jwt.encode({"sub": "a\nb", "exp": 2**40}, SECRET, algorithm="HS256"),
    lambda: jwt.encode({"sub": "u", "exp": 2**40, "nbf": 2**40}, SECRET, algorithm="HS256"),
    lambda: "not-a-jwt",
    lambda: "a.b.c",
    lambda: "x" * 5000,
    lambda: 12345,
    lambda: {"token": "nested"},
])
def test_bad_tokens_are_refused(make: object) -> None:
    assert refused(tokens(), make()).message_zh == TOKEN_INVALID  # type: ignore[operator]


def test_unsigned_alg_none_token_is_refused() -> None:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    token = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': 'u', 'exp': 2**40})}."
    assert refused(tokens(), token).message_zh == TOKEN_INVALID


def test_a_token_without_a_configured_secret_is_refused_not_ignored() -> None:
    token = mint_borrower_token("user-42", SECRET, START)
    assert refused(tokens(secret=None), token).message_zh == NOT_CONFIGURED


def test_settings_read_the_secret_and_the_requirement(tmp_path: object) -> None:
    base = {"HANDOFF_VAR_DIR": str(tmp_path), "HANDOFF_SECRET": SECRET}
    plain = Settings.from_env(base)
    assert plain.borrower_jwt_secret is None and plain.require_borrower_token is False
    strict = Settings.from_env({**base, "HANDOFF_BORROWER_JWT_SECRET": SECRET,
                                "HANDOFF_REQUIRE_BORROWER_TOKEN": "true"})
    assert strict.borrower_jwt_secret == SECRET and strict.require_borrower_token is True
    with pytest.raises(ConfigError, match="at least 32"):
        Settings.from_env({**base, "HANDOFF_BORROWER_JWT_SECRET": "short"})
    with pytest.raises(ConfigError, match="needs HANDOFF_BORROWER_JWT_SECRET"):
        Settings.from_env({**base, "HANDOFF_REQUIRE_BORROWER_TOKEN": "1"})
    with pytest.raises(ConfigError, match="true or false"):
        Settings.from_env({**base, "HANDOFF_REQUIRE_BORROWER_TOKEN": "maybe"})


def test_tokens_in_urls_never_reach_the_log() -> None:
    line = '"GET /socket.io/?EIO=4&transport=websocket&token=eyJhbGci.eyJzdWIi.sig HTTP/1.1"'
    assert "eyJ" not in redact_url_secrets(line)
    assert redact_url_secrets("/?a=1&b=2") == "/?a=1&b=2"
    import logging

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               "%s - %s", ("127.0.0.1", line), None)
    MaskingFilter().filter(record)
    assert "eyJ" not in record.getMessage() and "token=[redacted]" in record.getMessage()
