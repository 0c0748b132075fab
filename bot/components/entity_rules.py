"""Rule-based extraction of loan entities from (normalised) Chinese text, without Rasa.

Matching is done by spaCy: a `spacy.blank("zh")` pipeline with the character segmenter (every
character is a token, so every annotated span is a token span; jieba glues a number's unit to
the next word, 借/5/万一/年, 20/万分/36/期, which would widen or lose spans), token patterns for
spaCy's `Matcher` (IS_DIGIT, ORTH IN [...], REGEX, SPACY) and an `EntityRuler` for lexicon
phrases. Amount candidates come from a small scanner instead (`_amount_ends`: as token
patterns they were most of the time of a message with a number), in the same form.
Chinese numerals become numbers with cn2an. What spaCy's patterns cannot say (they have no
look-around) is checked on the characters around a match: the conditions a regular
expression would write as `(?<!\\d)` or `(?![A-Za-z0-9])`, and which words make a number money.

Stages run from the most to the least specific format; every accepted span is masked so that
no character is extracted twice and a later, looser rule (a bare amount) cannot take the digits
of an earlier, stricter one (a phone number):

1. application_id, phone, id_last6, phone_last4 (explicit formats and cue words);
2. dates and clock times (masked only, so 2026-11-23 is not an amount);
3. lexicon phrases (repayment_method, product), longest first (EntityRuler);
4. term (number + 期/个月/年/年半, 半年);
5. amount (number + magnitude 万/千/百/k/w; or a number before 元/块; or a bare integer of 3-9
   digits after a money word such as 借/还/扣/额度).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.text import normalise

Entity = dict[str, Any]
Pattern = list[dict[str, Any]]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LEXICON_PATH = ROOT / "data" / "dictionaries" / "lexicon.yml"

MAX_TERM_MONTHS = 600  # 50 years: anything longer is a date or noise, not a loan term
MAX_AMOUNT = 10**10
_MAX_NUMBER_CHARS = 24
_MAX_DIGITS = 11  # MAX_AMOUNT has 11 digits; a longer run is an ID or card number
_MAX_CN_CHARS = 12
_MASK = "\x00"  # normalise() never leaves NUL in text, so it cannot collide

# --- token specs (one token = one character) -------------------------------------------------
_CN_DIGITS = "零〇一二两三四五六七八九"
_CN_NUM_CHARS = _CN_DIGITS + "十百千"
_ASCII_DIGITS = "0123456789"
DIGIT: dict[str, Any] = {"IS_DIGIT": True, "IS_ASCII": True}
CN_START: dict[str, Any] = {"ORTH": {"IN": list(_CN_DIGITS + "十")}}
# Between a cue (尾号, 后六位) and its value: 是 / 为 / : / = / 号码 / 的 / spaces.
FILL: dict[str, Any] = {"TEXT": {"REGEX": r"^(?:[是为:=号码的]|\s+)$"}, "OP": "?"}


def _one_of(chars: str) -> dict[str, Any]:
    return {"ORTH": {"IN": list(chars)}}


def _literal(text: str) -> Pattern:
    return [{"ORTH": ch} for ch in text]


def _run(spec: dict[str, Any], least: int, most: int) -> Pattern:
    """`least` to `most` repetitions (spaCy 3.4 has no {m,n} quantifier)."""
    return [dict(spec)] * least + [{**spec, "OP": "?"}] * (most - least)


def _digits(count: int) -> Pattern:
    return [dict(DIGIT)] * count


# --- context (what token patterns cannot express) --------------------------------------------
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
# Longer numeral runs cannot be any entity (more digits than MAX_AMOUNT or a phone number, a
# Chinese numeral longer than any amount): masked before matching.
_OVERLONG_NUMERAL = re.compile(r"\d{25,}|[零〇一二两三四五六七八九十百千]{13,}")
_ASCII_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _tight(pattern: Pattern) -> Pattern:
    """No space inside a match: tokens are characters, and spaCy keeps a single space as the
    previous token's `whitespace_`, not as a token. Only a token with a required token after
    it is constrained (one that may end the match may have a space after it); matches that end
    in optional tokens are checked for spaces in `_candidates`."""
    required_after = [
        any(spec.get("OP") not in ("?", "*") for spec in pattern[i + 1 :])
        for i in range(len(pattern))
    ]
    return [
        {**spec, "SPACY": False} if required_after[i] and "SPACY" not in spec else dict(spec)
        for i, spec in enumerate(pattern)
    ]


def _cue(first: str, second: str) -> list[Pattern]:
    """(最后|后|末) + one of `first`, then optionally one of `second`: 后六位, 最后4码, 末六."""
    return [
        [{"ORTH": "最"}, {"ORTH": "后"}, _one_of(first), {**_one_of(second), "OP": "?"}],
        [_one_of("后末"), _one_of(first), {**_one_of(second), "OP": "?"}],
    ]


def _phone_separated() -> list[Pattern]:
    patterns = []
    for first in ("-", " "):
        for second in ("-", " "):
            pattern: Pattern = [{"ORTH": "1"}, _one_of("3456789"), dict(DIGIT)]
            for separator in (first, second):
                if separator == "-":
                    pattern.append({"ORTH": "-"})
                else:
                    pattern[-1] = {**pattern[-1], "SPACY": True}
                pattern.extend(_digits(4))
            patterns.append(_tight(pattern))
    return patterns


# The amount grammar: number [+ 千/k/百 [+ digit]] [+ 万/亿/w [+ tail]], where a number is
# 1-11 ASCII digits or 1-3 digits with 1-3 ",ddd" groups, either with an optional ".d" to
# ".dddd", or a Chinese numeral (a digit or 十, then up to 11 numeral characters).
_ASCII_DIGIT_SET = frozenset(_ASCII_DIGITS)
_CN_START_SET = frozenset(_CN_DIGITS + "十")
_CN_CHAR_SET = frozenset(_CN_NUM_CHARS)
_CN_ONE_TO_NINE_SET = frozenset("一二两三四五六七八九")
_THOUSAND_SET = frozenset("千kK")
_MAGNITUDE_SET = frozenset("万亿wW")
_AFTER_MAGNITUDE_DIGITS_SET = frozenset("千kK百")


def _amount_ends(text: str, i: int) -> set[tuple[int, str]]:
    """Every (end, how it ends) of an amount starting at `i`: all of them, not only the
    longest, because a longer one may be refused for its context and a shorter one kept.

    How a match ends decides what may follow it (`_AMOUNT_END_OK`): "ar" and "cn" a plain
    number, "unit" a magnitude or 千/百, "digit" one digit after a magnitude or 千 (1万2, 3千5),
    "cn_digit" a Chinese digit after 千 (3千五).

    A scanner, not Matcher token patterns: as 225 token patterns with optional runs the
    grammar was ≈ 2.8 ms of the Matcher's 2.84 ms on a message with a number (measured).
    tests/unit/bot/test_amount_forms.py keeps those patterns as the reference and checks
    both find the same spans.
    """
    n = len(text)

    def run(start: int, chars: frozenset[str], most: int) -> int:
        k = 0
        while k < most and start + k < n and text[start + k] in chars:
            k += 1
        return k

    def char(k: int) -> str:
        return text[k] if k < n else ""

    numbers: set[tuple[int, str]] = set()
    if char(i) in _ASCII_DIGIT_SET:
        digits = run(i, _ASCII_DIGIT_SET, _MAX_DIGITS)
        plain = [i + k for k in range(1, digits + 1)]
        grouped = []
        for head in range(1, min(digits, 3) + 1):
            pos = i + head
            for _ in range(3):
                if char(pos) != "," or run(pos + 1, _ASCII_DIGIT_SET, 3) < 3:
                    break
                pos += 4
                grouped.append(pos)
        for end in plain + grouped:
            numbers.add((end, "ar"))
            if char(end) == ".":
                for k in range(1, run(end + 1, _ASCII_DIGIT_SET, 4) + 1):
                    numbers.add((end + 1 + k, "ar"))
    elif char(i) in _CN_START_SET:
        for k in range(run(i + 1, _CN_CHAR_SET, _MAX_CN_CHARS - 1) + 1):
            numbers.add((i + 1 + k, "cn"))

    suffixed: set[tuple[int, str]] = set(numbers)
    for end, _ in numbers:
        if char(end) in _THOUSAND_SET:
            suffixed.add((end + 1, "unit"))
            if char(end + 1) in _ASCII_DIGIT_SET:
                suffixed.add((end + 2, "digit"))
            if char(end + 1) in _CN_ONE_TO_NINE_SET:
                suffixed.add((end + 2, "cn_digit"))
        elif char(end) == "百":
            suffixed.add((end + 1, "unit"))

    ends: set[tuple[int, str]] = set(suffixed)
    for end, _ in suffixed:
        if char(end) not in _MAGNITUDE_SET:
            continue
        ends.add((end + 1, "unit"))
        digits = run(end + 1, _ASCII_DIGIT_SET, 4)
        if digits:
            ends.add((end + 2, "digit"))
        for k in range(1, digits + 1):
            if char(end + 1 + k) in _AFTER_MAGNITUDE_DIGITS_SET:
                ends.add((end + 2 + k, "unit"))
        if char(end + 1) in _CN_START_SET:
            for k in range(run(end + 2, _CN_CHAR_SET, _MAX_CN_CHARS - 1) + 1):
                ends.add((end + 2 + k, "cn"))
    return ends


def _amount_candidates(doc: Any, text: str) -> dict[str, list[tuple[int, int, Any]]]:
    """Every span of `text` that reads as an amount, by how it ends (AMOUNT_ar, ...), in the
    Matcher's form: (start token, end token, span)."""
    candidates: dict[str, list[tuple[int, int, Any]]] = {}
    for i, ch in enumerate(text):
        if ch not in _ASCII_DIGIT_SET and ch not in _CN_START_SET:
            continue
        for end, ending in _amount_ends(text, i):
            span = doc.char_span(i, end)
            candidates.setdefault(f"AMOUNT_{ending}", []).append((span.start, span.end, span))
    return candidates


def _patterns() -> dict[str, list[Pattern]]:
    """Every Matcher pattern, by match label (one token = one character)."""
    tail_or_count = [_one_of("尾"), _one_of("号数")]
    fill = [dict(FILL)] * 8
    id_value = [*_digits(5), _one_of(_ASCII_DIGITS + "Xx")]
    p4_value = _digits(4)
    date_sep_1, date_sep_2 = _one_of("-/.年"), _one_of("-/.月")
    one_or_two = _run(DIGIT, 1, 2)
    patterns: dict[str, list[Pattern]] = {
        "APPLICATION_ID": [_tight([{"LOWER": "l"}, {"LOWER": "n"}, *_digits(11)])],
        "PHONE": [_tight([{"ORTH": "1"}, _one_of("3456789"), *_digits(9)])],
        "PHONE_SEPARATED": _phone_separated(),
        "ID_AFTER_CUE": [cue + fill + _tight(id_value) for cue in _cue("六6", "位码")],
        "ID_WITH_X": [_tight([*_digits(5), {"LOWER": "x"}])],
        "P4_AFTER_CUE": [
            cue + fill + _tight(p4_value) for cue in [tail_or_count, *_cue("四4", "位码")]
        ],
        "P4_BEFORE_CUE": [
            _tight(p4_value) + [{"IS_SPACE": True, "OP": "?"}] + tail_or_count
        ],
        "P4_BARE": [_tight(p4_value)],
        "ID_BARE": [_tight(id_value)],
        "DATE": [
            _tight([*_digits(4), date_sep_1, *one_or_two, date_sep_2, *one_or_two,
                    {**_one_of("日号"), "OP": "?"}]),
            _tight([*one_or_two, {"ORTH": "月"}, *one_or_two, _one_of("日号")]),
            _tight([*one_or_two, {"ORTH": ":"}, *_digits(2)]),
            _tight([*one_or_two, {"ORTH": ":"}, *_digits(2), {"ORTH": ":"}, *_digits(2)]),
        ],
        "TERM": [
            _tight(number + _literal(unit))
            for number in (
                _run(DIGIT, 1, 3),
                _run(DIGIT, 1, 3) + [{"ORTH": "."}, *_run(DIGIT, 1, 4)],
                _run(CN_START, 1, 4),
            )
            for unit in ("个月", "年半", "年", "期")
        ],
        "TERM_HALF_YEAR": [_tight(_literal("半年"))],
    }
    return patterns


# Labels whose matches may contain spaces: separators (138 1234 5678) or cue fill (尾号 5678);
# the value part of a cue match is checked on its own.
_SPACES_ALLOWED = frozenset(
    {"PHONE_SEPARATED", "ID_AFTER_CUE", "P4_AFTER_CUE", "P4_BEFORE_CUE"}
)


@lru_cache(maxsize=1)
def _matcher() -> Any:
    """One Matcher with every pattern, shared by all rule sets (it does not use the lexicon)."""
    from spacy.matcher import Matcher

    matcher = Matcher(_blank_chinese().vocab, validate=True)
    for label, patterns in _patterns().items():
        matcher.add(label, patterns)
    return matcher


@lru_cache(maxsize=1)
def _blank_chinese() -> Any:
    """spacy.blank("zh") with the character segmenter: no model, no download, no jieba."""
    import spacy

    return spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "char"}}})


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
        self._nlp = _blank_chinese()
        self._matcher = _matcher()
        self._ascii_phrases = {p for p in lexicon.index if p.isascii()}
        self._ruler = _lexicon_ruler(lexicon)
        import cn2an  # noqa: F401  (imported now, at model load: ~0.5 s the first time)

    def extract(self, text: str | bytes | None) -> list[Entity]:
        """Entities in `text` with offsets into it; values as in docs/contracts.md."""
        norm = normalise(text)
        if not norm.strip():
            return []
        found = _Found(norm)
        for run in _OVERLONG_NUMERAL.finditer(norm):
            found.mask(*run.span())  # never an entity; keeps the Matcher linear in the text
        doc = self._nlp.make_doc(found.masked)
        candidates: dict[str, list[tuple[int, int, Any]]] = {}
        for match_id, start, end in self._matcher(doc):
            label = self._nlp.vocab.strings[match_id]
            if label not in _SPACES_ALLOWED and doc[start:end].text.count(" "):
                continue
            candidates.setdefault(label, []).append((start, end, doc[start:end]))
        candidates.update(_amount_candidates(doc, found.masked))
        for spans in candidates.values():
            spans.sort(key=lambda item: (item[0], -item[1]))
        _explicit_formats(found, candidates)
        for span in _spans(candidates, "DATE"):
            found.mask(span.start_char, span.end_char)
        self._lexicon(doc, found)
        _terms(found, candidates)
        _amounts(found, candidates)
        return sorted(found.entities, key=lambda e: e["start"])

    def _lexicon(self, doc: Any, found: _Found) -> None:
        """EntityRuler over the lexicon; masked characters are pre-set entities it keeps."""
        from spacy.util import filter_spans

        taken = [
            span
            for start, end in found.taken_ranges()
            if (span := doc.char_span(start, end, label="TAKEN", alignment_mode="expand"))
        ]
        doc.ents = filter_spans(taken)
        for ent in self._ruler(doc).ents:
            if ent.label_ == "TAKEN" or " " in ent.text:
                continue
            phrase = ent.text.lower()
            if phrase in self._ascii_phrases and (
                found.before(ent.start_char) in _ASCII_ALNUM
                or found.after(ent.end_char) in _ASCII_ALNUM
            ):
                continue  # ASCII synonyms (debx) only as whole words
            found.add(ent.label_, ent.ent_id_, ent.start_char, ent.end_char)


def _lexicon_ruler(lexicon: Lexicon) -> Any:
    """An EntityRuler matching every lexicon phrase case-insensitively, id = canonical code."""
    import spacy
    from spacy.pipeline import EntityRuler

    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "char"}}})
    ruler = nlp.add_pipe(
        "entity_ruler", config={"phrase_matcher_attr": "LOWER", "overwrite_ents": False}
    )
    assert isinstance(ruler, EntityRuler)
    ruler.add_patterns(
        [
            {"label": entity, "pattern": phrase, "id": code}
            for phrase, (entity, code) in sorted(lexicon.index.items())
        ]
    )
    return ruler


def _spans(candidates: dict[str, list[tuple[int, int, Any]]], *labels: str) -> Iterator[Any]:
    for label in labels:
        for _, _, span in candidates.get(label, ()):
            yield span


def _explicit_formats(found: _Found, candidates: dict[str, list[tuple[int, int, Any]]]) -> None:
    def not_after_digit(span: Any) -> bool:
        before = found.before(span.start_char)
        return before not in _ASCII_DIGITS or found.masked[: span.start_char].endswith("86")

    for span in _spans(candidates, "APPLICATION_ID"):
        if found.before(span.start_char) not in _ASCII_ALNUM and found.after(
            span.end_char
        ) not in _ASCII_DIGITS:
            found.add("application_id", span.text.upper(), span.start_char, span.end_char)
    for span in _spans(candidates, "PHONE", "PHONE_SEPARATED"):
        if not_after_digit(span) and found.after(span.end_char) not in _ASCII_DIGITS:
            digits = "".join(ch for ch in span.text if ch in _ASCII_DIGITS)
            found.add("phone", digits, span.start_char, span.end_char)
    value_rules: list[tuple[str, str, Callable[[Any], Any], bool]] = [
        ("ID_AFTER_CUE", "id_last6", lambda s: s[-6:], False),
        ("ID_WITH_X", "id_last6", lambda s: s, True),
        ("P4_AFTER_CUE", "phone_last4", lambda s: s[-4:], False),
        ("P4_BEFORE_CUE", "phone_last4", lambda s: s[:4], True),
    ]
    for label, entity, value_of, free_before in value_rules:
        for span in _spans(candidates, label):
            value = value_of(span)
            if free_before and found.before(value.start_char) in _ASCII_ALNUM:
                continue
            if label != "P4_BEFORE_CUE" and found.after(value.end_char) in _ASCII_ALNUM:
                continue
            found.add(entity, value.text.upper(), value.start_char, value.end_char)
    # A bare answer to the verification form (annotated so in the NLU data; see docs/nlu.md).
    for label, entity in (("P4_BARE", "phone_last4"), ("ID_BARE", "id_last6")):
        for span in _spans(candidates, label):
            if not found.masked[: span.start_char].strip() and not found.masked[
                span.end_char :
            ].strip():
                found.add(entity, span.text.upper(), span.start_char, span.end_char)


def _terms(found: _Found, candidates: dict[str, list[tuple[int, int, Any]]]) -> None:
    def context_ok(span: Any) -> bool:
        before = found.before(span.start_char)
        if not found.is_free(span.start_char, span.end_char):
            return False
        if span.text.endswith("年") and found.after(span.end_char) == "化":
            return False  # 年化 is a rate
        if span.text == "半年":
            return before not in _ASCII_DIGITS + _CN_DIGITS + "十"
        return not (
            before in _ASCII_ALNUM
            or before in "第" + _CN_DIGITS + "十"
            or _after_number_sign(found, span.start_char)
        )

    valid = [s for s in _spans(candidates, "TERM", "TERM_HALF_YEAR") if context_ok(s)]
    for span in _longest_per_start(valid):
        start, end, text = span.start_char, span.end_char, span.text
        if text == "半年":
            found.add("term", 6, start, end)
            continue
        unit = next(u for u in ("个月", "年半", "年", "期") if text.endswith(u))
        number = text[: -len(unit)]
        if unit == "期" and number == "一":
            # 上一期 / 这一期 / 一期还多少: "one instalment", not a one-period loan.
            continue
        value = _parse_number(number)
        if value is None:
            continue
        months = {"期": value, "个月": value, "年": value * 12, "年半": value * 12 + 6}[unit]
        if months != months.to_integral_value() or not 1 <= months <= MAX_TERM_MONTHS:
            continue
        found.add("term", int(months), start, end)


_AMOUNT_END_OK: dict[str, Callable[[str], bool]] = {
    "ar": lambda after: True,
    "unit": lambda after: True,
    "digit": lambda after: after != ".",
    "cn_digit": lambda after: after not in "十百千",
    "cn": lambda after: True,
}


def _amounts(found: _Found, candidates: dict[str, list[tuple[int, int, Any]]]) -> None:
    valid = []
    for ending, end_ok in _AMOUNT_END_OK.items():
        for span in _spans(candidates, f"AMOUNT_{ending}"):
            before, after = found.before(span.start_char), found.after(span.end_char)
            if (
                not found.is_free(span.start_char, span.end_char)
                or before in _ASCII_ALNUM
                or before in _CN_NUM_CHARS
                or _after_number_sign(found, span.start_char)
                or after in _ASCII_ALNUM
                or not end_ok(after)
            ):
                continue
            valid.append(span)
    masked = found.masked
    for span in _longest_per_start(valid):
        start, end, expr = span.start_char, span.end_char, span.text
        after = masked[end : end + 4]
        if _NOT_MONEY_AFTER.match(after):
            continue
        value = _parse_number(expr)
        if value is None or value <= 0:
            continue
        if _CURRENCY_AFTER.match(after):
            if expr == "一" and not after.startswith("块钱") and after.startswith("块"):
                continue  # 一块 is usually "together" (一块去), 一块钱 is money
        elif any(ch in "万亿wW千kK百" for ch in expr):
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


def _longest_per_start(spans: Iterator[Any] | list[Any]) -> list[Any]:
    """Like a greedy regular expression scanning left to right: at each start only the longest
    candidate counts, and a candidate starting inside an earlier one is never tried, whether
    the earlier one is then accepted or not."""
    best: dict[int, Any] = {}
    for span in spans:
        current = best.get(span.start_char)
        if current is None or span.end_char > current.end_char:
            best[span.start_char] = span
    chosen, consumed = [], 0
    for start in sorted(best):
        if start >= consumed:
            chosen.append(best[start])
            consumed = best[start].end_char
    return chosen


def _after_number_sign(found: _Found, start: int) -> bool:
    """12.5 / 5,000: a match starting after a digit and a decimal point or comma is a tail."""
    return found.before(start) in ".," and found.before(start - 1) in _ASCII_DIGITS


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

    def before(self, index: int) -> str:
        """The (masked) character before `index`; NUL at the start (in no character set)."""
        return self.masked[index - 1] if index > 0 else _MASK

    def after(self, index: int) -> str:
        """The (masked) character at `index`; NUL at the end (in no character set)."""
        return self.masked[index] if index < len(self.text) else _MASK

    def taken_ranges(self) -> list[tuple[int, int]]:
        ranges: list[tuple[int, int]] = []
        start = None
        for index, taken in enumerate(self._taken):
            if taken and start is None:
                start = index
            elif not taken and start is not None:
                ranges.append((start, index))
                start = None
        if start is not None:
            ranges.append((start, len(self._taken)))
        return ranges

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
