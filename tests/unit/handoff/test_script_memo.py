"""The queue's script detection, remembered per text, answers exactly as detect_script."""

from __future__ import annotations

from bot.text import detect_script
from handoff.texts import script_of


def test_script_of_is_detect_script() -> None:
    for text in ("我要转人工", "我要轉人工，謝謝", "還款日是哪天", "", "hello 123", "贷款 貸款",
                 "請問我的申請進度", "请问我的申请进度"):
        assert script_of(text) == detect_script(text), text
        assert script_of(text) == detect_script(text), text  # remembered: the same answer
