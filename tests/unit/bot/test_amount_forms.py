"""The amount scanner finds exactly the spans the Matcher token patterns it replaced found
(bot/components/entity_rules.py `_amount_ends`).

The token patterns below are the previous implementation, kept here as the reference: one
token per character, DIGIT = an ASCII digit, `?` runs for {m,n}. Both are run over the NLU
training data, the benchmark's messages and generated numerals, and must give the same
(label, start, end) set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.matcher import Matcher

from bench.utterances import conversations
from bot.components.entity_rules import (
    _CN_DIGITS,
    _CN_NUM_CHARS,
    _MAX_CN_CHARS,
    _MAX_DIGITS,
    _OVERLONG_NUMERAL,
    CN_START,
    DIGIT,
    Pattern,
    _amount_candidates,
    _blank_chinese,
    _digits,
    _run,
    _tight,
)
from bot.text import normalise

ROOT = Path(__file__).resolve().parents[3]
# Token specs only the reference patterns use (one token = one character).
CN_CHAR: dict[str, Any] = {"ORTH": {"IN": list(_CN_NUM_CHARS)}}
CN_ONE_TO_NINE: dict[str, Any] = {"ORTH": {"IN": list("一二两三四五六七八九")}}
THOUSAND: dict[str, Any] = {"ORTH": {"IN": ["千", "k", "K"]}}
MAGNITUDE: dict[str, Any] = {"ORTH": {"IN": ["万", "亿", "w", "W"]}}


def reference_patterns() -> dict[str, list[Pattern]]:
    """The token patterns the scanner replaced (session 4's implementation)."""
    plain = _run(DIGIT, 1, _MAX_DIGITS)
    decimal = [{"ORTH": "."}, *_run(DIGIT, 1, 4)]
    numbers: list[tuple[str, Pattern]] = [("ar", plain), ("ar", plain + decimal)]
    for groups in (1, 2, 3):
        grouped = _run(DIGIT, 1, 3) + [{"ORTH": ","}, *_digits(3)] * groups
        numbers += [("ar", grouped), ("ar", grouped + decimal)]
    cn_number = [CN_START, *_run(CN_CHAR, 0, _MAX_CN_CHARS - 1)]
    numbers.append(("cn", cn_number))
    suffixes: list[tuple[str, Pattern]] = [
        ("", []), ("unit", [THOUSAND]), ("digit", [THOUSAND, DIGIT]),
        ("cn_digit", [THOUSAND, CN_ONE_TO_NINE]), ("unit", [{"ORTH": "百"}]),
    ]
    tails: list[tuple[str, Pattern]] = [
        ("", []), ("unit", [MAGNITUDE]),
        ("unit", [MAGNITUDE, *_run(DIGIT, 1, 4), {"ORTH": {"IN": list("千kK百")}}]),
        ("digit", [MAGNITUDE, DIGIT]), ("cn", [MAGNITUDE, *cn_number]),
    ]
    grouped_patterns: dict[str, list[Pattern]] = {}
    for number_end, number in numbers:
        for suffix_end, suffix in suffixes:
            for tail_end, tail in tails:
                end = tail_end or suffix_end or number_end
                grouped_patterns.setdefault(f"AMOUNT_{end}", []).append(
                    _tight(number + suffix + tail))
    return grouped_patterns


@pytest.fixture(scope="module")
def reference() -> Any:
    matcher = Matcher(_blank_chinese().vocab, validate=True)
    for label, patterns in reference_patterns().items():
        matcher.add(label, patterns)
    return matcher


def spans_both_ways(matcher: Any, raw: str) -> tuple[set[Any], set[Any]]:
    """(scanner, token patterns) as sets of (label, start char, end char), on the
    text `extract` gives the Matcher (normalised, overlong numerals masked)."""
    text = _OVERLONG_NUMERAL.sub(lambda m: "\x00" * len(m.group()), normalise(raw))
    nlp = _blank_chinese()
    doc = nlp.make_doc(text)
    ours = {(label, span.start_char, span.end_char)
            for label, found in _amount_candidates(doc, text).items() for _, _, span in found}
    theirs = set()
    for match_id, start, end in matcher(doc):
        span = doc[start:end]
        if " " not in span.text:  # extract drops amount matches with a space inside
            theirs.add((nlp.vocab.strings[match_id], span.start_char, span.end_char))
    return ours, theirs


def corpus() -> list[str]:
    texts = []
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            for line in str(block.get("examples", "")).splitlines():
                line = line.strip()
                if line.startswith("- "):
                    texts.append(line[2:])
    texts += [t for seed in range(400) for conv in [next(iter(conversations(seed)))]
              for t in conv.turns]
    return texts


def test_same_spans_over_the_nlu_data_and_the_benchmark_messages(reference: Any) -> None:
    texts = corpus()
    assert len(texts) > 1000
    with_amounts = 0
    for text in texts:
        ours, theirs = spans_both_ways(reference, text)
        assert ours == theirs, text
        with_amounts += bool(ours)
    assert with_amounts > 300  # the comparison is not of empty sets


NUMERAL_CHARS = "0123456789.,，" + _CN_NUM_CHARS + "kKwW万亿千百 元块期年个月借"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=NUMERAL_CHARS, max_size=40))
def test_same_spans_for_generated_numerals(reference: Any, text: str) -> None:
    ours, theirs = spans_both_ways(reference, text)
    assert ours == theirs


@pytest.mark.parametrize("text", [
    "1,000,000.5万", "12345678901", "123456789012", "五万五千", "3千5", "1万2", "2w5k",
    "一千二百三十四万五千六百七十八", "0.5万", "1.23456", "1,00", "10,000,000,000.99",
    "5 万", "3千五百万", "两百", "十", "〇", _CN_DIGITS * 3,
])
def test_same_spans_for_edge_cases(reference: Any, text: str) -> None:
    ours, theirs = spans_both_ways(reference, text)
    assert ours == theirs
