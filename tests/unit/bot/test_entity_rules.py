"""bot.components.entity_rules: values and exact spans per docs/contracts.md."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.components.entity_rules import (
    DEFAULT_LEXICON_PATH,
    EntityRules,
    Lexicon,
    default_rules,
    extract_entities,
)


def spans(text: str) -> list[tuple[str, str, Any]]:
    """(entity, surface text, value) triples, in text order."""
    return [(e["entity"], text[e["start"] : e["end"]], e["value"]) for e in extract_entities(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("五万五", [("amount", "五万五", 55000)]),
        ("1.5万", [("amount", "1.5万", 15000)]),
        ("借十万块", [("amount", "十万", 100000)]),
        ("50k", [("amount", "50k", 50000)]),
        ("5w", [("amount", "5w", 50000)]),
        ("3W", [("amount", "3W", 30000)]),
        ("借3千", [("amount", "3千", 3000)]),
        ("借3千5", [("amount", "3千5", 3500)]),
        ("两万", [("amount", "两万", 20000)]),
        ("二百万", [("amount", "二百万", 2000000)]),
        ("借1万2", [("amount", "1万2", 12000)]),
        ("50000元", [("amount", "50000", 50000)]),
        ("5,000元", [("amount", "5,000", 5000)]),
        ("借5万块钱", [("amount", "5万", 50000)]),
        ("借3000", [("amount", "3000", 3000)]),
        ("扣了我199块", [("amount", "199", 199)]),
        ("月供3500太高了", [("amount", "3500", 3500)]),
        ("额度5000-10000元", [("amount", "5000", 5000), ("amount", "10000", 10000)]),
        ("一块钱", [("amount", "一", 1)]),
        ("借款金额：50000", [("amount", "50000", 50000)]),
        ("借 5000", [("amount", "5000", 5000)]),
    ],
)
def test_amounts(text: str, expected: list[tuple[str, str, Any]]) -> None:
    assert spans(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("36期", [("term", "36期", 36)]),
        ("十二期", [("term", "十二期", 12)]),
        ("三年", [("term", "三年", 36)]),
        ("3年", [("term", "3年", 36)]),
        ("两年半", [("term", "两年半", 30)]),
        ("1年半", [("term", "1年半", 18)]),
        ("1.5年", [("term", "1.5年", 18)]),
        ("半年", [("term", "半年", 6)]),
        ("36个月", [("term", "36个月", 36)]),
        ("一年期的利率", [("term", "一年", 12)]),
    ],
)
def test_terms(text: str, expected: list[tuple[str, str, Any]]) -> None:
    assert spans(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "886",  # "bye bye"
        "打12378投诉你们",  # hotline, not money
        "我要投诉 12378",
        "好的,3000",  # a money word in an earlier clause does not count
        "年化18%算高吗",
        "日息万分之二是真的吗",
        "日息万五",
        "第3期还款",
        "上一期没还",
        "2026年11月23日",
        "2026-11-23 10:30",
        "60岁还能申请吗",
        "晚还三天",
        "十分感谢",
        "千万别催",
        "我们一块去",
        "12.5期",
        "借50000000000000",  # long digit run: not an amount
        "",
        "   ",
    ],
)
def test_not_entities(text: str) -> None:
    assert spans(text) == []


def test_full_question() -> None:
    assert spans("借5万分12期等额本息每月还多少") == [
        ("amount", "5万", 50000),
        ("term", "12期", 12),
        ("repayment_method", "等额本息", "equal_installment"),
    ]


def test_traditional_input_offsets_refer_to_raw_text() -> None:
    assert spans("借五萬分三年") == [("amount", "五萬", 50000), ("term", "三年", 36)]


def test_full_width_input() -> None:
    assert spans("借５万分１２期") == [("amount", "５万", 50000), ("term", "１２期", 12)]


def test_amount_then_term_without_separator() -> None:
    assert spans("借5万一年利息多少钱") == [("amount", "5万", 50000), ("term", "一年", 12)]
    assert spans("五万三年") == [("amount", "五万", 50000), ("term", "三年", 36)]
    assert spans("借50k年化利率多少") == [("amount", "50k", 50000)]
    assert spans("借3000块一个月利息多少") == [
        ("amount", "3000", 3000),
        ("term", "一个月", 1),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ln20261123001", [("application_id", "ln20261123001", "LN20261123001")]),
        ("编号LN20261123001进度", [("application_id", "LN20261123001", "LN20261123001")]),
        ("13812345678", [("phone", "13812345678", "13812345678")]),
        ("号码+8613812345678", [("phone", "13812345678", "13812345678")]),
        ("138-1234-5678", [("phone", "138-1234-5678", "13812345678")]),
        ("尾号5678", [("phone_last4", "5678", "5678")]),
        ("尾号是0932", [("phone_last4", "0932", "0932")]),
        ("预留手机后4位9081", [("phone_last4", "9081", "9081")]),
        ("8866 尾号", [("phone_last4", "8866", "8866")]),
        ("9527", [("phone_last4", "9527", "9527")]),
        ("身份证后六位12345X", [("id_last6", "12345X", "12345X")]),
        ("身份证后6位是33021x", [("id_last6", "33021x", "33021X")]),
        ("身分證末六碼60413X", [("id_last6", "60413X", "60413X")]),
        ("证件后六位350602", [("id_last6", "350602", "350602")]),
        ("62301X", [("id_last6", "62301X", "62301X")]),
        (
            "手机尾号6021 身份证后六位52011X",
            [("phone_last4", "6021", "6021"), ("id_last6", "52011X", "52011X")],
        ),
    ],
)
def test_identifiers(text: str, expected: list[tuple[str, str, Any]]) -> None:
    assert spans(text) == expected


def test_identifiers_are_not_amounts_or_terms() -> None:
    found = spans("我的编号ln20261123001，手机13812345678，借2万")
    assert found == [
        ("application_id", "ln20261123001", "LN20261123001"),
        ("phone", "13812345678", "13812345678"),
        ("amount", "2万", 20000),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("等额本金", [("repayment_method", "等额本金", "equal_principal")]),
        ("等額本息", [("repayment_method", "等額本息", "equal_installment")]),
        ("DEBX", [("repayment_method", "DEBX", "equal_installment")]),
        ("按月付息到期还本", [("repayment_method", "按月付息到期还本", "interest_only")]),
        ("到期一次还本付息", [("repayment_method", "到期一次还本付息", "bullet")]),
        ("公积金信用贷", [("product", "公积金信用贷", "provident_fund")]),
        ("信用贷款", [("product", "信用贷款", "credit")]),
        ("信貸", [("product", "信貸", "credit")]),
        ("abcdebxyz", []),  # ASCII synonyms only as whole words
    ],
)
def test_lexicon_phrases(text: str, expected: list[tuple[str, str, Any]]) -> None:
    assert spans(text) == expected


def test_every_lexicon_phrase_maps_to_its_code() -> None:
    import yaml

    data = yaml.safe_load(DEFAULT_LEXICON_PATH.read_text(encoding="utf-8"))
    for entity, codes in data.items():
        for code, spec in codes.items():
            for phrase in [spec["label"], *spec["synonyms"]]:
                assert spans(phrase) == [(entity, phrase, code)], phrase


def test_lexicon_rejects_conflicting_phrases() -> None:
    with pytest.raises(ValueError, match="maps to both"):
        Lexicon.from_mapping({"product": {"credit": ["信用贷"], "business": ["信用貸"]}})
    with pytest.raises(ValueError):
        Lexicon.from_mapping(["not", "a", "mapping"])


def test_custom_lexicon_and_round_trip() -> None:
    lexicon = Lexicon.from_mapping({"product": {"car": {"label": "车贷", "synonyms": ["汽车贷"]}}})
    rules = EntityRules(Lexicon.from_mapping(lexicon.to_mapping()))
    assert [(e["entity"], e["value"]) for e in rules.extract("我要汽车贷")] == [("product", "car")]
    assert lexicon.fingerprint() == Lexicon.from_mapping(lexicon.to_mapping()).fingerprint()


def test_entity_dict_shape() -> None:
    (entity,) = extract_entities("借5万")
    assert entity == {"entity": "amount", "value": 50000, "start": 1, "end": 3, "confidence": 1.0}
    assert isinstance(entity["value"], int)


@pytest.mark.parametrize("junk", [None, b"\xff\xfe\x00", "\x00" * 50, "\udc80借5万"])
def test_bad_input_gives_a_result(junk: Any) -> None:
    assert isinstance(extract_entities(junk), list)


@pytest.mark.parametrize(
    "text", ["五" * 10_000, "5" * 10_000, "一" * 5000 + "万", "9" * 30 + "万元"]
)
def test_absurd_numbers_are_ignored(text: str) -> None:
    assert extract_entities(text) == []


def test_long_message() -> None:
    text = ("借5万分12期等额本息😀" * 800)[:10_000]
    found = extract_entities(text)
    assert len(found) >= 3 * 600
    assert all(text[e["start"] : e["end"]] in {"5万", "12期", "等额本息"} for e in found)


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            "0123456789.,-万千百kwKW元块期个月年半第一二两三五十尾号后六位身份证LNlnX等额本息贷借 "
        ),
        max_size=40,
    )
)
def test_spans_never_overlap_and_stay_in_bounds(text: str) -> None:
    found = extract_entities(text)
    covered: set[int] = set()
    for entity in found:
        assert 0 <= entity["start"] < entity["end"] <= len(text)
        chars = set(range(entity["start"], entity["end"]))
        assert not chars & covered
        covered |= chars
        if entity["entity"] in {"amount", "term"}:
            assert isinstance(entity["value"], int) and entity["value"] > 0


def test_default_rules_are_built_once() -> None:
    assert default_rules() is default_rules()
