"""Masking of ID numbers, bank cards and mobiles; no false positives on amounts or dates."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handoff.masking import MaskingFilter, _masked, mask_text, mask_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13812345678", "138****5678"),
        ("我的手机号是13812345678，谢谢", "我的手机号是138****5678，谢谢"),
        ("我的電話號碼是19912345678，請回電", "我的電話號碼是199****5678，請回電"),
        ("+8613812345678", "+86138****5678"),
        ("+86 138 1234 5678", "+86 138 **** 5678"),
        ("138-1234-5678", "138-****-5678"),
        ("身份证11010119900307123X", "身份证**************123X"),
        ("身份證號碼：110101199003071234。", "身份證號碼：**************1234。"),
        ("id 11010119900307123x", "id **************123x"),
        ("110101 19900307 123X", "****** ******** 123X"),
        ("卡号6222021234567890", "卡号************7890"),
        ("銀行卡6222021234567890123", "銀行卡***************0123"),
        ("6222 0212 3456 7890", "**** **** **** 7890"),
        ("6222-0212-3456-7890-123", "****-****-****-***0-123"),
        ("两个号码13812345678和13987654321", "两个号码138****5678和139****4321"),
        ("１３８１２３４５６７８", "１３８****５６７８"),
    ],
)
def test_masks(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "我想借50000元",
        "借5万，分12期",
        "还款日20261123",
        "申请编号LN20261123001",
        "座机010-12345678",
        "12345678901",  # 11 digits but starts with 12: not a mobile
        "尾号5678",
        "身份证后六位12345X",
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "金额 1000 2000 3000",
        "",
        "没有数字",
    ],
)
def test_leaves_other_numbers(text: str) -> None:
    assert mask_text(text) == text


def test_mask_value_walks_json() -> None:
    data = {"phone": 13812345678, "amount": 50000, "ok": True, "rate": 0.05,
            "nested": [{"card": "6222021234567890"}], "none": None}
    assert mask_value(data) == {"phone": "138****5678", "amount": 50000, "ok": True,
                                "rate": 0.05, "nested": [{"card": "************7890"}],
                                "none": None}


@given(st.integers(min_value=0, max_value=10**9), st.text(alphabet="借还元万期的", max_size=5))
def test_short_numbers_never_masked(amount: int, words: str) -> None:
    text = f"{words}{amount}{words}"
    assert mask_text(text) == text


@given(
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    st.text(alphabet="請問您的電話是", max_size=6),
)
def test_any_mobile_keeps_only_prefix_and_last_four(phone: str, around: str) -> None:
    masked = mask_text(f"{around}{phone}{around}")
    assert phone not in masked
    assert f"{phone[:3]}****{phone[-4:]}" in masked


def test_logging_filter_masks_formatted_message(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("handoff.test.masking")
    masking = MaskingFilter()
    logger.addFilter(masking)
    try:
        with caplog.at_level(logging.INFO, logger="handoff.test.masking"):
            logger.info("borrower %s wrote card %s", "13812345678", "6222021234567890")
    finally:
        logger.removeFilter(masking)
    assert caplog.records[-1].getMessage() == "borrower 138****5678 wrote card ************7890"
    assert "13812345678" not in caplog.text


@given(st.text(alphabet="0123456789０１２３４５６７８９ -－\u3000+Xx号元:.卡", max_size=40))
def test_the_quick_scan_never_skips_a_text_the_patterns_would_mask(text: str) -> None:
    assert mask_text(text) == (_masked(text) if text else text)


@pytest.mark.parametrize(("text", "expected"), [
    ("电话138－1234－5678", "电话138－****－5678"),
    ("卡6222\u30000212\u30003456\u30007890", "卡****\u3000****\u3000****\u30007890"),
    ("１３８ １２３４ ５６７８", "１３８ **** ５６７８"),
])
def test_full_width_separators_still_reach_the_patterns(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_the_quick_scan_spares_texts_without_a_long_number() -> None:
    for text in ("127.0.0.1:54321 - \"WebSocket /socket.io/?EIO=4\" [accepted]",
                 "借5万分12期", "1381234567", "138 1234 567"):
        assert mask_text(text) == text == _masked(text)
