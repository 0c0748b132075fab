"""The benchmark's borrowers must not repeat themselves: varied, reproducible, mixed."""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter

import pytest

from bench.utterances import MIX, amount_text, chinese_number, conversations, term_text, typo
from bot.text import detect_script


def sample(n: int, seed: int = 3) -> list:
    return list(itertools.islice(conversations(seed), n))


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    assert [c.turns for c in sample(50)] == [c.turns for c in sample(50)]
    assert [c.turns for c in sample(50)] != [c.turns for c in sample(50, seed=4)]


def test_the_mix_follows_the_shares() -> None:
    kinds = Counter(c.kind for c in sample(3000))
    for kind, share in MIX:
        assert abs(kinds[kind] / 3000 - share) < 0.04, (kind, kinds)


def test_messages_vary_like_real_traffic() -> None:
    messages = [t for c in sample(1000) for t in c.turns]
    assert len(set(messages)) / len(messages) > 0.45
    informational = [t for c in sample(1000) if c.kind in ("rate", "repayment", "progress")
                     for t in c.turns[:1]]
    assert len(set(informational)) / len(informational) > 0.8


def test_both_scripts_and_typos_occur() -> None:
    convs = sample(1000)
    traditional = [c for c in convs if "traditional" in c.tags]
    assert 0.1 < len(traditional) / len(convs) < 0.3
    assert all(detect_script("".join(c.turns)) == "traditional" for c in traditional
               if any("\u4e00" <= ch <= "\u9fff" for ch in "".join(c.turns))
               and any(ch in "".join(c.turns) for ch in "貸還請號麼問")), "script mixed"
    rng = random.Random(1)
    slips = {typo("请问贷款利率多少", rng) for _ in range(200)}
    assert len(slips) > 5 and "请问贷款利率多少" not in slips


@pytest.mark.parametrize("n", [1, 9, 10, 12, 20, 36, 99])
def test_chinese_numbers(n: int) -> None:
    import cn2an

    assert cn2an.cn2an(chinese_number(n), "smart") == n


def test_amounts_and_terms_come_in_many_forms() -> None:
    rng = random.Random(5)
    amounts = {amount_text(rng) for _ in range(300)}
    terms = {term_text(rng) for _ in range(300)}
    assert len(amounts) > 40 and len(terms) > 15
    assert any(re.search(r"[一二三五八十]万", a) for a in amounts)
    assert any(a.endswith("w") for a in amounts) and any(a.endswith("元") for a in amounts)
    assert any(t.endswith("年") for t in terms) and any(t.endswith("个月") for t in terms)


def test_handoff_conversations_mark_their_trigger() -> None:
    for conv in sample(300):
        if conv.kind == "handoff":
            assert conv.handoff_turn == 1 and len(conv.turns) == 3
        else:
            assert conv.handoff_turn is None
