"""The 三不原则 check run over every bot reply before it can ship.

1. 不承诺审批 - never promise approval (包过, 保证下款, 一定能批 ...).
2. 不诱导多借 - never push the borrower to borrow more than asked (多借点, 借满额度 ...).
3. 不泄露信息 - never show full personal numbers: 11-digit mobile numbers, 18-character
   ID numbers, 16-19 digit bank cards. Masked forms (138****0001) are fine.

Text is normalised first (Traditional -> Simplified with OpenCC t2s, full-width ->
half-width with NFKC), so 包過 and １３８… are caught too. Phrases that are negated in
the same clause (我们不承诺包过, 不建议借满额度) or quoted as someone else's claim
(凡是声称“包过”的都是诈骗) are allowed, so honest warnings can still be written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import opencc

PROMISE_APPROVAL = "promise_approval"
ENCOURAGE_OVERBORROWING = "encourage_overborrowing"
PERSONAL_DATA = "personal_data"

_PROMISE_PATTERNS = (
    r"包(?:过|批|通过|下款|放款|审批)",
    r"(?:保证|确保|担保|承诺)(?:您|你)?(?:一定|肯定)?(?:能|可以|会)?"
    r"(?:通过|下款|放款|批下来|获批|批款|审批通过|贷到|借到|批)",
    r"(?:一定|肯定|绝对|必定|必然|百分百|百分之百|100%)(?:能|可以|会|可|让您|让你)"
    r"(?:通过|下款|放款|获批|批下来|批款|批|贷到|借到|贷下来|借下来)",
    r"(?:一定|肯定|绝对|必定)(?:批|获批|下款|放款|贷给)",
    r"(?:百分百|百分之百|100%)(?:通过|下款|放款|获批|批)",
    r"稳过|必过|必批|秒批|零拒绝|无视征信|不看征信|黑户(?:也)?(?:能|可以|可)(?:贷|借|下款)",
)

_OVERBORROW_PATTERNS = (
    r"多(?:借|贷|申请)(?:一)?(?:点|些|几万|几千|一笔|一倍)",
    r"(?:借|贷)多(?:一)?(?:点|些)",
    r"(?:借|贷|用|提)(?:满|足)(?:您的|你的)?(?:额度|全部额度|最高额度|授信)",
    r"额度(?:都|全部|全)?(?:用|借|提|贷)(?:满|光)",
    r"把额度(?:都|全部|全)?(?:用|借|提|贷)(?:满|完|光|足)",
    r"(?:建议|推荐|不如|干脆|最好|趁)(?:您|你)?(?:直接|现在)?(?:借|贷|申请|提|用)(?:到)?"
    r"(?:满|足|最高|顶格|上限|更多|更高|最大)",
    r"顶格(?:借|贷|申请)",
    r"(?:借|贷)得越多越",
    r"(?:再|额外)多(?:借|贷)",
)

# "审批通过后当天放款" describes what follows approval; it does not promise approval.
_PROMISE_RE = re.compile(
    "(?:" + "|".join(f"(?:{p})" for p in _PROMISE_PATTERNS) + ")(?!后|之后|以后)"
)
_OVERBORROW_RE = re.compile("|".join(f"(?:{p})" for p in _OVERBORROW_PATTERNS))

# A negation shortly before the phrase, in the same clause, turns it into a disclaimer.
_NEGATIONS = (
    "不", "没", "无法", "无须", "无需", "未必", "并非", "别", "勿", "避免", "防止", "拒绝",
    "谨防", "警惕", "杜绝",
)
_NEGATION_WINDOW = 6  # characters before the phrase searched for a negation
# Look like negations but do not negate what follows (不用担心，包过 / 不管怎样都包过).
_NOT_NEGATIONS = (
    "不用担心", "别担心", "不管", "不论", "不仅", "不但", "不错", "不少", "不久", "不超过",
    "不到", "不如", "不妨", "没问题", "没关系", "别犹豫", "不要犹豫", "不用犹豫",
)
# Words that mark the phrase as someone else's claim being reported or warned against.
_REPORTED = ("声称", "号称", "宣称", "谎称", "自称", "打着", "所谓", "诈骗", "骗子", "骗局", "虚假")
_CLAUSE_BREAK = re.compile(r"[，,；;：:。！？!?\n]")
_SENTENCE_BREAK = re.compile(r"[。！？!?\n]")
_QUOTES = {"“": "”", "「": "」", "『": "』", '"': '"', "‘": "’"}

# Digit runs: contiguous, or grouped with single spaces/dashes (138 0000 0001).
_DIGITS_CONTIGUOUS = re.compile(r"(?<![0-9A-Za-z])(?:\+?86)?\d{11,19}[Xx]?(?![0-9A-Za-z])")
_DIGITS_GROUPED = re.compile(
    r"(?<![0-9A-Za-z])\d{3,6}(?:[ \-]\d{3,6}){1,4}(?:[Xx])?(?![0-9A-Za-z])"
)
_MOBILE = re.compile(r"1[3-9]\d{9}")
_ID_NUMBER = re.compile(
    r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dX]"
)


@dataclass(frozen=True)
class GuardrailViolation:
    """One breach of the 三不原则 in a reply.

    ``matched`` is the offending phrase; for personal data it is masked so that logs of
    violations never store the number itself.
    """

    rule: str  # promise_approval | encourage_overborrowing | personal_data
    matched: str
    start: int  # offsets in the normalised text
    end: int
    reason: str  # English, for test failures and logs


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def normalise(text: str) -> str:
    """Full-width -> half-width (NFKC) and Traditional -> Simplified."""
    return _t2s().convert(unicodedata.normalize("NFKC", text))


def check_reply(text: str) -> list[GuardrailViolation]:
    """Every 三不原则 violation in ``text`` (empty list = the reply may be sent)."""
    if not isinstance(text, str):
        raise TypeError(f"check_reply expects str, got {type(text).__name__}")
    norm = normalise(text)
    violations: list[GuardrailViolation] = []
    for rule, pattern, reason in (
        (PROMISE_APPROVAL, _PROMISE_RE, "promises approval or disbursement"),
        (ENCOURAGE_OVERBORROWING, _OVERBORROW_RE, "encourages borrowing more than asked"),
    ):
        for m in pattern.finditer(norm):
            if not _negated(norm, m.start()) and not _reported(norm, m.start(), m.end()):
                violations.append(GuardrailViolation(rule, m.group(), m.start(), m.end(), reason))
    violations.extend(_personal_data(norm))
    return sorted(violations, key=lambda v: (v.start, v.rule))


def is_safe(text: str) -> bool:
    """True when ``text`` breaks none of the 三不原则."""
    return not check_reply(text)


def mask_number(digits: str) -> str:
    """Keep the first 3 and last 4 characters: 13800000001 -> 138****0001."""
    return f"{digits[:3]}{'*' * max(len(digits) - 7, 4)}{digits[-4:]}"


def _clause_before(text: str, start: int) -> str:
    breaks = list(_CLAUSE_BREAK.finditer(text, 0, start))
    return text[breaks[-1].end() if breaks else 0 : start]


def _negated(text: str, start: int) -> bool:
    clause = _clause_before(text, start)
    for harmless in _NOT_NEGATIONS:
        clause = clause.replace(harmless, "|" * len(harmless))
    window = clause[-_NEGATION_WINDOW:]
    return any(neg in window for neg in _NEGATIONS)


def _reported(text: str, start: int, end: int) -> bool:
    """Quoted (“包过”) or in a sentence that reports/warns about someone's claim."""
    before = text[:start]
    for open_q, close_q in _QUOTES.items():
        if open_q == close_q:
            if before.count(open_q) % 2 == 1 and open_q in text[end:]:
                return True
        elif before.rfind(open_q) > before.rfind(close_q) and close_q in text[end:]:
            return True
    breaks = list(_SENTENCE_BREAK.finditer(text, 0, start))
    sentence_start = breaks[-1].end() if breaks else 0
    after = _SENTENCE_BREAK.search(text, end)
    sentence = text[sentence_start : after.start() if after else len(text)]
    return any(word in sentence for word in _REPORTED)


def _classify(raw: str) -> str | None:
    digits = re.sub(r"[ \-]", "", raw).upper().removeprefix("+")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if _MOBILE.fullmatch(digits):
        return "mobile phone number"
    if _ID_NUMBER.fullmatch(digits):
        return "national ID number"
    if digits.isdigit() and 16 <= len(digits) <= 19:
        return "bank card number"
    return None


def _personal_data(norm: str) -> list[GuardrailViolation]:
    found: list[GuardrailViolation] = []
    taken: list[tuple[int, int]] = []
    for pattern in (_DIGITS_CONTIGUOUS, _DIGITS_GROUPED):
        for m in pattern.finditer(norm):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            kind = _classify(m.group())
            if kind is None:
                continue
            taken.append((m.start(), m.end()))
            digits = re.sub(r"[ \-+]", "", m.group())
            found.append(
                GuardrailViolation(
                    PERSONAL_DATA, mask_number(digits), m.start(), m.end(), f"shows a full {kind}"
                )
            )
    return found
