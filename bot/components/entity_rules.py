"""Rule-based extraction of loan entities from (normalised) Chinese text, without Rasa.

Everything works on character offsets of the text, never on word tokens: annotated spans must
match exactly (`docs/contracts.md`), and jieba often glues a number's unit to the next word
(借/5/万一/年, 20/万分/36/期), so any token-aligned matcher would widen or lose spans.

Stages run from the most to the least specific format; every accepted span is masked so that
no character is extracted twice and a later, looser rule (a bare amount) cannot take the digits
of an earlier, stricter one (a phone number):

1. application_id, phone, id_last6, phone_last4 (explicit formats and cue words);
2. dates and clock times (masked only, so 2026-11-23 is not an amount);
3. lexicon phrases (repayment_method, product), longest first;
4. term (number + 期/个月/年/年半, 半年);
5. amount (number + magnitude 万/千/百/k/w; or a number before 元/块; or a bare integer of 3-9
   digits after a money word such as 借/还/扣/额度).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.text import normalise

Entity = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LEXICON_PATH = ROOT / "data" / "dictionaries" / "lexicon.yml"

MAX_TERM_MONTHS = 600  # 50 years: anything longer is a date or noise, not a loan term
MAX_AMOUNT = 10**10
_MAX_NUMBER_CHARS = 24
_MASK = "\x00"  # normalise() never leaves NUL in text, so it cannot collide

# --- explicit formats ------------------------------------------------------------------------
_APPLICATION_ID = re.compile(r"(?<![A-Za-z0-9])[Ll][Nn]\d{11}(?!\d)")
_PHONE = re.compile(r"(?:(?<=86)|(?<!\d))1[3-9]\d{9}(?!\d)")
_PHONE_SEPARATED = re.compile(r"(?:(?<=86)|(?<!\d))1[3-9]\d[- ]\d{4}[- ]\d{4}(?!\d)")
_FILL = r"(?:[是为:=\s]|号码|号|的){0,4}"
_ID_VALUE = r"\d{5}[\dXx](?![\dA-Za-z])"
_P4_VALUE = r"\d{4}(?![\dA-Za-z])"
_ID_AFTER_CUE = re.compile(r"(?:最后|后|末)(?:六|6)(?:位|码)?" + _FILL + "(" + _ID_VALUE + ")")
_ID_WITH_X = re.compile(r"(?<![\dA-Za-z])\d{5}[Xx](?![\dA-Za-z])")
_P4_AFTER_CUE = re.compile(
    r"(?:尾号|尾数|(?:最后|后|末)(?:四|4)(?:位|码)?)" + _FILL + "(" + _P4_VALUE + ")"
)
_P4_BEFORE_CUE = re.compile(r"(?<![\dA-Za-z])(\d{4})\s*(?=尾号|尾数)")
# A bare answer to the verification form (annotated so in the NLU data; see docs/nlu.md).
_STANDALONE_P4 = re.compile(r"\s*(\d{4})\s*")
_STANDALONE_ID = re.compile(r"\s*(\d{5}[\dXx])\s*")

# --- dates and times (masked, never extracted) ----------------------------------------------
_DATE_TIME = re.compile(
    r"\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}[日号]?"
    r"|\d{1,2}月\d{1,2}[日号]"
    r"|\d{1,2}:\d{2}(?::\d{2})?"
)

# --- numbers ---------------------------------------------------------------------------------
_CN_DIGITS = "零〇一二两三四五六七八九"
_CN_NUM = f"[{_CN_DIGITS}十][{_CN_DIGITS}十百千]*"
_AR_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"

_TERM = re.compile(
    rf"(?<![第\dA-Za-z{_CN_DIGITS}十])(?<!\d[.,])"
    rf"(?P<num>\d{{1,3}}(?:\.\d+)?|[{_CN_DIGITS}十]{{1,4}})"
    r"(?P<unit>个月|年半|年(?!化)|期)"
    rf"|(?<![\d{_CN_DIGITS}十])(?P<half>半年)(?!化)"
)

_PART = rf"(?:{_AR_NUM}|{_CN_NUM})(?:[千kK](?:\d(?![\d.])|[一二两三四五六七八九](?![十百千]))?|百)?"
_TAIL = rf"(?:\d{{1,4}}[千kK百]|\d(?![\d.])|{_CN_NUM})"
_AMOUNT = re.compile(
    rf"(?<![A-Za-z0-9{_CN_DIGITS}十百千])(?<!\d[.,])(?P<expr>{_PART}(?:[万亿wW](?:{_TAIL})?)?)"
    r"(?![A-Za-z0-9])"
)
_MAGNITUDE = re.compile(r"[万亿wW千kK百]")
_CURRENCY_AFTER = re.compile(r"\s?(?:元|块|圆|人民币|rmb|RMB)")
_NOT_MONEY_AFTER = re.compile(
    r"(?:期|个|年(?![化息利])|月(?![供息利])|天|日(?![息利])|号|点|分钟|小时|周|岁|次|位|张|家|人"
    r"|%|‰|倍|条|项|秒|楼|层|页|遍|级|折|厘|笔)"
)
# Words right before a bare integer that make it money (借3000, 扣了我199, 月供3500).
_MONEY_CUE = re.compile(
    r"借|贷|额度|金额|还|扣|收|交|转|付|欠|骗|花|提现|到手|到账|月供|剩|笔|本金|利息|首付|"
    r"充|汇|退|赔|罚|少了|多了|只有|最多|最少|一共|总共|共计|工资|收入|月薪|存|取|给|损失|差|凑"
)
# 5000-10000元, 3000到5000: the lower bound of a range is money when the upper one is.
_RANGE_AFTER = re.compile(r"\s?[-~到至]\s?\d")
_CLAUSE_BREAK = re.compile(r"[,.!?;。！？；、]")
_CUE_WINDOW = 5


@dataclass(frozen=True)
class Lexicon:
    """Phrases borrowers use for each product / repayment method, keyed by canonical code."""

    entries: Mapping[str, Mapping[str, tuple[str, ...]]]
    _index: dict[str, tuple[str, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, tuple[str, str]] = {}
        for entity, codes in self.entries.items():
            for code, phrases in codes.items():
                for phrase in phrases:
                    # Match what the pipeline sees: normalised (Simplified) and case-folded.
                    key = normalise(phrase).strip().lower()
                    if not key:
                        continue
                    if key in index and index[key] != (entity, code):
                        raise ValueError(
                            f"lexicon phrase {phrase!r} maps to both {index[key]} and "
                            f"{(entity, code)}"
                        )
                    index[key] = (entity, code)
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_mapping(cls, data: Any) -> Lexicon:
        """Build from the lexicon.yml structure: {entity: {code: {label, synonyms: [...]}}}."""
        if not isinstance(data, Mapping):
            raise ValueError("lexicon must be a mapping of entity name to codes")
        entries: dict[str, dict[str, tuple[str, ...]]] = {}
        for entity, codes in data.items():
            if not isinstance(codes, Mapping):
                raise ValueError(f"lexicon entry {entity!r} must map codes to phrases")
            entries[str(entity)] = {}
            for code, spec in codes.items():
                if isinstance(spec, Mapping):
                    phrases = [spec.get("label"), *(spec.get("synonyms") or [])]
                elif isinstance(spec, (list, tuple)):
                    phrases = list(spec)
                else:
                    raise ValueError(f"lexicon entry {entity}.{code} has no phrases")
                entries[str(entity)][str(code)] = tuple(
                    str(p) for p in phrases if isinstance(p, str) and p.strip()
                )
        return cls(entries)

    @classmethod
    def from_file(cls, path: str | Path) -> Lexicon:
        import yaml

        with open(path, encoding="utf-8") as handle:
            return cls.from_mapping(yaml.safe_load(handle))

    def to_mapping(self) -> dict[str, dict[str, list[str]]]:
        """JSON-serialisable form, the inverse of `from_mapping` (phrases as plain lists)."""
        return {e: {c: list(p) for c, p in codes.items()} for e, codes in self.entries.items()}

    def fingerprint(self) -> str:
        data = json.dumps(self.to_mapping(), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(data.encode("utf-8")).hexdigest()

    @property
    def index(self) -> dict[str, tuple[str, str]]:
        """Normalised lower-case phrase -> (entity, code)."""
        return self._index


def _to_int(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _parse_number(expr: str) -> Decimal | None:
    """Arabic, Chinese or mixed numerals with units (五万五, 1.5万, 50k, 3千5) -> value."""
    import cn2an

    text = expr.replace(",", "").translate(str.maketrans("kKwW", "千千万万"))
    if len(text) > _MAX_NUMBER_CHARS:  # no loan amount is written this long; avoid huge ints
        return None
    if text.isdigit():
        return Decimal(text)
    try:
        return Decimal(str(cn2an.cn2an(text, "smart")))
    except (ValueError, KeyError, IndexError, TypeError, InvalidOperation):
        return None


class EntityRules:
    """Compiled extraction rules for one lexicon; build once, call `extract` per message."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        alternatives = []
        for phrase in sorted(lexicon.index, key=lambda p: (-len(p), p)):
            escaped = re.escape(phrase)
            if phrase.isascii():
                escaped = rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])"
            alternatives.append(escaped)
        self._lexicon_re = (
            re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None
        )

    def extract(self, text: str | bytes | None) -> list[Entity]:
        """Entities in `text` with offsets into it; values as in docs/contracts.md."""
        norm = normalise(text)
        if not norm.strip():
            return []
        found = _Found(norm)
        self._explicit_formats(found)
        for match in _DATE_TIME.finditer(found.masked):
            found.mask(match.start(), match.end())
        if self._lexicon_re is not None:
            for match in self._lexicon_re.finditer(found.masked):
                entity, code = self.lexicon.index[match.group(0).lower()]
                found.add(entity, code, match.start(), match.end())
        self._terms(found)
        self._amounts(found)
        return sorted(found.entities, key=lambda e: e["start"])

    @staticmethod
    def _explicit_formats(found: _Found) -> None:
        for match in _APPLICATION_ID.finditer(found.masked):
            found.add("application_id", match.group(0).upper(), match.start(), match.end())
        for regex in (_PHONE, _PHONE_SEPARATED):
            for match in regex.finditer(found.masked):
                digits = re.sub(r"\D", "", match.group(0))
                found.add("phone", digits, match.start(), match.end())
        for regex in (_ID_AFTER_CUE, _ID_WITH_X):
            for match in regex.finditer(found.masked):
                group = 1 if regex.groups else 0
                found.add("id_last6", match.group(group).upper(), *match.span(group))
        for regex in (_P4_AFTER_CUE, _P4_BEFORE_CUE):
            for match in regex.finditer(found.masked):
                found.add("phone_last4", match.group(1), *match.span(1))
        for regex, entity in ((_STANDALONE_P4, "phone_last4"), (_STANDALONE_ID, "id_last6")):
            whole = regex.fullmatch(found.masked)
            if whole:
                found.add(entity, whole.group(1).upper(), *whole.span(1))

    @staticmethod
    def _terms(found: _Found) -> None:
        for match in _TERM.finditer(found.masked):
            if match.group("half"):
                found.add("term", 6, match.start(), match.end())
                continue
            num, unit = match.group("num"), match.group("unit")
            if unit == "期" and num == "一":
                # 上一期 / 这一期 / 一期还多少: "one instalment", not a one-period loan.
                continue
            value = _parse_number(num)
            if value is None:
                continue
            months = {"期": value, "个月": value, "年": value * 12, "年半": value * 12 + 6}[unit]
            if months != months.to_integral_value() or not 1 <= months <= MAX_TERM_MONTHS:
                continue
            found.add("term", int(months), match.start(), match.end())

    @staticmethod
    def _amounts(found: _Found) -> None:
        masked = found.masked
        for match in _AMOUNT.finditer(masked):
            start, end = match.span()
            expr = match.group("expr")
            after = masked[end : end + 4]
            if _NOT_MONEY_AFTER.match(after):
                continue
            value = _parse_number(expr)
            if value is None or value <= 0:
                continue
            if _CURRENCY_AFTER.match(after):
                if expr == "一" and not after.startswith("块钱") and after.startswith("块"):
                    continue  # 一块 is usually "together" (一块去), 一块钱 is money
            elif _MAGNITUDE.search(expr):
                if value < 100:
                    continue
            elif not (
                expr.isdigit()
                and 3 <= len(expr) <= 9
                and (_money_cue_before(masked, start) or _RANGE_AFTER.match(after))
            ):
                continue
            amount = _to_int(value)
            if 1 <= amount <= MAX_AMOUNT:
                found.add("amount", amount, start, end)


def _money_cue_before(text: str, start: int) -> bool:
    window = text[max(0, start - _CUE_WINDOW) : start]
    breaks = list(_CLAUSE_BREAK.finditer(window))
    if breaks:
        window = window[breaks[-1].end() :]
    return bool(_MONEY_CUE.search(window))


class _Found:
    """Accepted entities plus a masked view of the text (taken characters read as NUL)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._taken = bytearray(len(text))
        self._masked: str | None = text
        self.entities: list[Entity] = []

    @property
    def masked(self) -> str:
        """The text with taken characters replaced by NUL, rebuilt only after changes."""
        if self._masked is None:
            self._masked = "".join(
                _MASK if taken else ch for ch, taken in zip(self.text, self._taken, strict=True)
            )
        return self._masked

    def is_free(self, start: int, end: int) -> bool:
        return start < end and not any(self._taken[start:end])

    def mask(self, start: int, end: int) -> None:
        self._taken[start:end] = b"\x01" * (end - start)
        self._masked = None

    def add(self, entity: str, value: Any, start: int, end: int) -> bool:
        if not self.is_free(start, end):
            return False
        self.entities.append(
            {"entity": entity, "value": value, "start": start, "end": end, "confidence": 1.0}
        )
        self.mask(start, end)
        return True


@lru_cache(maxsize=1)
def default_rules() -> EntityRules:
    """Rules for the repository's lexicon, built on first use."""
    return EntityRules(Lexicon.from_file(DEFAULT_LEXICON_PATH))


def extract_entities(text: str | bytes | None, rules: EntityRules | None = None) -> list[Entity]:
    """Extract loan entities from raw borrower text (normalised here; offsets into `text`)."""
    return (rules or default_rules()).extract(text)
