"""bot.text: normalisation must keep offsets valid and never crash on junk input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.text import detect_script, normalise, to_script


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("借五萬分三年", "借五万分三年"),
        ("請問等額本息怎麼還款", "请问等额本息怎么还款"),
        ("身份證後六位", "身份证后六位"),
        ("ＬＮ２０２６１１２３００１", "LN20261123001"),
        ("借５万，分１２期？", "借5万,分12期?"),
        ("借\u30005万", "借 5万"),
        ("￥５０００", "¥5000"),
        ("好的👍🏻谢谢", "好的  谢谢"),
        ("❤️\u200d🔥借钱", "    借钱"),
        ("a\x00b\u200bc\ufeffd\te\n", "a b c d e "),
        ("我想借5万", "我想借5万"),
        ("DEBX 还款", "DEBX 还款"),
        ("温度25℃，第①期", "温度25℃,第①期"),
    ],
)
def test_normalise_examples(raw: str, expected: str) -> None:
    assert normalise(raw) == expected
    assert len(normalise(raw)) == len(raw)


def test_normalise_empty_and_none() -> None:
    assert normalise("") == ""
    assert normalise(None) == ""


def test_normalise_bytes_are_decoded_leniently() -> None:
    assert normalise("借五萬".encode()) == "借五万"
    assert normalise(b"\xff\xfe\xe5\x80\x9f") == "  借"


def test_normalise_rejects_other_types_clearly() -> None:
    with pytest.raises(TypeError, match="expected str"):
        normalise(12345)  # type: ignore[arg-type]


def test_normalise_binary_junk() -> None:
    junk = bytes(range(256)).decode("utf-8", errors="replace") + "\udc80\udcff\x00"
    result = normalise(junk)
    assert len(result) == len(junk)
    assert "\x00" not in result and "\ufffd" not in result
    assert "\udc80" not in result


def test_normalise_long_message() -> None:
    raw = ("請問借５萬分３年😀" * 1200)[:10_000]
    result = normalise(raw)
    assert len(result) == 10_000
    assert result.startswith("请问借5万分3年 ")


def test_normalise_falls_back_when_phrase_conversion_changes_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bot.text as text_module

    real = text_module._convert

    def lengthening(config: str, text: str) -> str:
        converted = real(config, text)
        return converted + "多" if len(text) > 1 else converted

    monkeypatch.setattr(text_module, "_convert", lengthening)
    assert normalise("借五萬分三年") == "借五万分三年"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=200))
def test_normalise_preserves_length(raw: str) -> None:
    assert len(normalise(raw)) == len(raw)


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from("借五萬分三年請問等額本息還款後身份證ＬＮ１２３４５😀\u3000 ,。a"),
        max_size=60,
    )
)
def test_normalise_is_idempotent_on_chinese(raw: str) -> None:
    once = normalise(raw)
    assert normalise(once) == once


@pytest.mark.parametrize(
    ("raw", "script"),
    [
        ("借五萬分三年", "traditional"),
        ("請問等額本息怎麼還款", "traditional"),
        ("借五万分三年", "simplified"),
        ("我想借5万，谢谢", "simplified"),
        ("5万元，謝謝", "simplified"),  # mixed: one of each script family -> default
        ("hello 123", "simplified"),
        ("", "simplified"),
        (None, "simplified"),
    ],
)
def test_detect_script(raw: str | None, script: str) -> None:
    assert detect_script(raw) == script


def test_to_script() -> None:
    assert to_script("借5万分12期等额本息", "traditional") == "借5萬分12期等額本息"
    assert to_script("借5万分12期", "simplified") == "借5万分12期"
    assert to_script("借5万", None) == "借5万"
    assert to_script(None, "traditional") == ""
    with pytest.raises(ValueError, match="unknown script"):
        to_script("借5万", "klingon")


def test_round_trip_for_traditional_borrower() -> None:
    reply = "您申请的等额本息贷款已经放款"
    assert detect_script(to_script(reply, detect_script("請問進度"))) == "traditional"


def test_import_builds_no_converter() -> None:
    """OpenCC reads dictionaries from disk: that must happen on first use, not at import."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import bot.text as t; assert not t._converters; "
        "t.normalise('萬'); print(sorted(t._converters))"
    )
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=root,
    )
    assert result.stdout.strip() == "['t2s']"
