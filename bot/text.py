"""Pure text helpers shared by the NLU pipeline and the action server.

`normalise` is length-preserving (same number of code points in and out) so that entity
offsets annotated on the raw training text stay valid on the normalised text the pipeline
sees, and so that offsets the extractor reports can be applied to the borrower's own text.
"""

from __future__ import annotations

import threading
import unicodedata
from functools import lru_cache
from typing import Literal, Protocol

Script = Literal["traditional", "simplified"]


class _Converter(Protocol):
    def convert(self, text: str) -> str: ...


_converters: dict[str, _Converter] = {}
_converters_lock = threading.Lock()

# Full-width signs outside the FF01-FF5E block that have a one-character half-width form.
_FULLWIDTH_SIGNS = {
    0xFFE0: "\u00a2",  # ¢
    0xFFE1: "\u00a3",  # £
    0xFFE2: "\u00ac",  # ¬
    0xFFE3: "\u00af",  # ¯
    0xFFE4: "\u00a6",  # ¦
    0xFFE5: "\u00a5",  # ¥ (the yuan sign borrowers type)
    0xFFE6: "\u20a9",  # ₩
}

# Emoji and pictograph blocks. Ordinary symbols (℃, ①, ¥, %) are kept: they carry meaning.
_EMOJI_RANGES: tuple[tuple[int, int], ...] = (
    (0x1F000, 0x1FAFF),  # mahjong .. symbols & pictographs extended-A (incl. flags, emoticons)
    (0x2600, 0x27BF),  # miscellaneous symbols, dingbats (☀ ✅ ❤)
    (0x2300, 0x23FF),  # miscellaneous technical (⌚ ⏰)
    (0x2B00, 0x2BFF),  # arrows and stars (⭐ ⬆)
    (0xFE00, 0xFE0F),  # variation selectors (emoji presentation)
    (0xE0100, 0xE01EF),  # variation selectors supplement
    (0x20E3, 0x20E3),  # combining enclosing keycap
    (0xFFFC, 0xFFFD),  # object replacement, replacement character (decoding junk)
)

# Categories that never carry meaning for NLU: controls, format (zero-width), surrogates,
# private use, unassigned, line/paragraph separators, and every kind of space.
_BLANK_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})


def _converter(config: str) -> _Converter:
    """Build each OpenCC converter once, on first use (it reads its dictionaries from disk);
    the package's conversion, computed faster (bot/opencc_fast.py)."""
    conv = _converters.get(config)
    if conv is None:
        with _converters_lock:
            conv = _converters.get(config)
            if conv is None:
                import opencc

                from bot.opencc_fast import FastOpenCC

                conv = FastOpenCC(opencc.OpenCC(config))
                _converters[config] = conv
    return conv


def warm_up() -> None:
    """Build the converters now (at model load), so no borrower's message waits for OpenCC
    to read its dictionaries."""
    for config in ("t2s", "s2t"):
        _converter(config)


def _convert(config: str, text: str) -> str:
    return str(_converter(config).convert(text))


def _coerce(text: object) -> str:
    """Accept str, bytes (decoded leniently) and None; anything else is a caller bug."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", errors="replace")
    raise TypeError(f"expected str, bytes or None, got {type(text).__name__}")


def _is_han(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0xF900 <= cp <= 0xFAFF
        or 0x20000 <= cp <= 0x3FFFF
    )


@lru_cache(maxsize=65536)
def _clean_char(ch: str) -> str:
    """Map one code point to exactly one code point: half-width form, or a space for noise."""
    cp = ord(ch)
    if 0xFF01 <= cp <= 0xFF5E:
        return chr(cp - 0xFEE0)
    if cp in _FULLWIDTH_SIGNS:
        return _FULLWIDTH_SIGNS[cp]
    if ch == " ":
        return ch
    for low, high in _EMOJI_RANGES:
        if low <= cp <= high:
            return " "
    category = unicodedata.category(ch)
    if category == "Sk" and 0x1F3FB <= cp <= 0x1F3FF:  # skin-tone modifiers
        return " "
    # Python 3.10's Unicode tables predate CJK extensions H/I: keep unassigned Han planes.
    if category == "Cn" and 0x20000 <= cp <= 0x3FFFF:
        return ch
    if category in _BLANK_CATEGORIES:
        return " "
    return ch


@lru_cache(maxsize=65536)
def _t2s_char(ch: str) -> str:
    converted = _convert("t2s", ch)
    return converted if len(converted) == 1 else ch


@lru_cache(maxsize=65536)
def _s2t_char(ch: str) -> str:
    converted = _convert("s2t", ch)
    return converted if len(converted) == 1 else ch


def _t2s_same_length(text: str) -> str:
    """Phrase-level t2s (better for ambiguous characters), per character if lengths differ."""
    if not any(_is_han(ch) for ch in text):
        return text
    converted = _convert("t2s", text)
    if len(converted) == len(text):
        return converted
    return "".join(_t2s_char(ch) if _is_han(ch) else ch for ch in text)


def normalise(text: str | bytes | None) -> str:
    """Return `text` in the form the NLU pipeline is trained on, with the same length.

    Full-width ASCII and the ideographic space become half-width; emoji, pictographs,
    control, zero-width and other invisible characters become spaces; Traditional Chinese
    becomes Simplified. Case is kept: featurizers lower-case themselves and entity rules
    match case-insensitively, while actions may echo the text back.
    """
    raw = _coerce(text)
    if not raw:
        return ""
    cleaned = "".join(_clean_char(ch) for ch in raw)
    result = _t2s_same_length(cleaned)
    # Defensive: the contract is length preservation; never hand back a shifted string.
    return result if len(result) == len(raw) else cleaned


def detect_script(text: str | bytes | None) -> Script:
    """Guess whether the borrower writes Traditional or Simplified Chinese.

    Counts Han characters that only exist in Traditional (changed by t2s) against those that
    only exist in Simplified (changed by s2t, untouched by t2s). Traditional needs a clear
    majority (at least three to one); mixed, ambiguous or Han-free text counts as Simplified,
    the platform default.
    """
    raw = _coerce(text)
    traditional = simplified = 0
    for ch in raw:
        if not _is_han(ch):
            continue
        if _t2s_char(ch) != ch:
            traditional += 1
        elif _s2t_char(ch) != ch:
            simplified += 1
    if traditional > 0 and traditional >= 3 * simplified:
        return "traditional"
    return "simplified"


def to_script(text: str | bytes | None, script: str | None) -> str:
    """Render a (Simplified) reply in the borrower's script.

    Uses OpenCC `s2t` (OpenCC standard Traditional characters), not `s2tw`/`s2hk`: we do not
    know whether a Traditional writer is in Taiwan, Hong Kong or abroad, and `s2twp` would also
    swap vocabulary, which could rename loan terms and product names. `None` means unknown and
    is treated as Simplified.
    """
    raw = _coerce(text)
    if script is None or script == "simplified":
        return raw
    if script == "traditional":
        return _convert("s2t", raw) if raw else raw
    raise ValueError(f"unknown script {script!r}; expected 'traditional' or 'simplified'")
