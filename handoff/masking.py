"""Mask personal numbers in anything agents see and in logs.

Masked (only the last 4 digits stay; phones also keep their 3-digit carrier prefix):
- mainland ID numbers: 18 characters, the last may be X (`11010119900307123X` →
  `**************123X`), also written 6-8-4 with spaces or hyphens;
- bank cards: 16–19 digits, contiguous or in groups of 4 (`6222 0212 3456 7890` →
  `**** **** **** 7890`);
- mainland mobiles: 11 digits 1[3-9]…, optionally +86/0086/86 and 3-4-4 groups
  (`13812345678` → `138****5678`).

A match never starts or ends inside a longer digit run, so amounts (50000), dates (20261123)
and application ids (LN20261123001) are left alone. Full-width digits count as digits.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_D = r"\d"
_SEP = r"[ \-]"

# Order matters: the first alternative that matches at a position wins.
_PATTERNS: tuple[tuple[re.Pattern[str], int], ...] = (
    # ID number (18; also 6-8-4 grouped). keep_first = 0
    (
        re.compile(
            rf"(?<!\d)(?:{_D}{{17}}|{_D}{{6}}{_SEP}{_D}{{8}}{_SEP}{_D}{{3}})[\dXx](?![\dA-Za-z])"
        ),
        0,
    ),
    # bank card, contiguous 16-19 digits
    (re.compile(r"(?<!\d)\d{16,19}(?!\d)"), 0),
    # bank card in groups of 4 (last group 1-4 digits for 17-19 digit cards)
    (re.compile(r"(?<!\d)\d{4}(?:[ \-]\d{4}){3}(?:[ \-]\d{1,4})?(?![\d])"), 0),
    # mobile, optional country code, contiguous or 3-4-4
    (
        re.compile(
            r"(?<![\d+])(?:(?:\+|00)?86[ \-]?)?(1[3-9]\d(?:\d{8}|[ \-]\d{4}[ \-]\d{4}))(?!\d)"
        ),
        3,
    ),
)


# Full-width digits, X, hyphen and space map one-to-one onto ASCII, so a match found in the
# translated "shadow" text has the same positions in the original text.
_FULL_WIDTH = str.maketrans(
    {**{chr(0xFF10 + i): str(i) for i in range(10)}, "Ｘ": "X", "ｘ": "x", "－": "-", "\u3000": " "}
)


def _masked_positions(match: re.Match[str], keep_first: int, keep_last: int = 4) -> list[int]:
    """Positions (in the searched text) of the digits to hide: all but the first
    `keep_first` and the last `keep_last` digit-or-X characters of the number."""
    begin = match.start(1) if match.re.groups else match.start(0)
    number = match.group(1) if match.re.groups else match.group(0)
    positions = [begin + i for i, ch in enumerate(number) if ch.isdigit() or ch in "Xx"]
    keep = set(positions[:keep_first]) | set(positions[-keep_last:])
    return [p for p in positions if p not in keep]


# Every pattern above matches a run of at least 11 digits, spaces and hyphens (full-width ones
# too) that begins and ends with a digit; text without such a run has nothing to mask. One scan
# for it spares most texts (log lines with ports and times, amounts) the four patterns:
# a uvicorn connection line ≈ 41 → 16 µs, written whole, its masking ≈ 30 → 2 µs.
_NUMBER_RUN = re.compile(r"\d[\d \-\uff0d\u3000]{9,}\d")


def mask_text(text: str) -> str:
    """`text` with ID numbers, bank cards and mobile numbers masked."""
    if not text or _NUMBER_RUN.search(text) is None:
        return text
    return _masked(text)


def _masked(text: str) -> str:
    original = list(text)
    shadow = text.translate(_FULL_WIDTH)
    for pattern, keep_first in _PATTERNS:
        hidden = [p for m in pattern.finditer(shadow) for p in _masked_positions(m, keep_first)]
        if not hidden:
            continue
        shadow_chars = list(shadow)
        for position in hidden:
            original[position] = shadow_chars[position] = "*"
        shadow = "".join(shadow_chars)
    return "".join(original)


def mask_value(value: Any) -> Any:
    """Mask strings anywhere inside JSON-like data; integers that look like a phone, card or ID
    become masked strings (a slot may hold a phone as a number)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        as_text = str(value)
        masked = mask_text(as_text)
        return value if masked == as_text else masked
    if isinstance(value, dict):
        return {key: mask_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(item) for item in value]
    return value


# Credentials in URLs (a borrower token in the rasa-webchat socket URL shows up in uvicorn's
# request lines): never written to a log.
_URL_SECRET = re.compile(r"(?i)([?&](?:token|auth_token|access_token)=)[^&\s\"']+")


def redact_url_secrets(text: str) -> str:
    """`text` with the values of token-like URL query parameters replaced."""
    return _URL_SECRET.sub(r"\1[redacted]", text) if "=" in text else text


class MaskingFilter(logging.Filter):
    """Logging filter that masks the formatted message (attach to handlers or loggers):
    personal numbers, and token values in URLs."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        masked = redact_url_secrets(mask_text(message))
        if masked != message or record.args:
            record.msg, record.args = masked, ()
        # A traceback is formatted after filters run; format it now so its exception texts are
        # masked too (handlers reuse `exc_text` when it is set).
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_url_secrets(mask_text(record.exc_text))
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True
