"""data/dictionaries/jieba: JiebaTokenizer loads every file there as a jieba user dictionary."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from bot.components.entity_rules import DEFAULT_LEXICON_PATH, ROOT
from bot.text import normalise

DICTIONARY_DIR = ROOT / "data" / "dictionaries" / "jieba"
LINE = re.compile(r"^(\S+) (\d+) ([a-z]+)$")


def _entries() -> dict[str, int]:
    entries: dict[str, int] = {}
    for path in sorted(DICTIONARY_DIR.iterdir()):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = LINE.match(line)
            # jieba has no comment syntax: any other line would become a bogus "word".
            assert match, f"{path.name}:{number}: {line!r} is not 'word freq tag'"
            word, freq = match.group(1), int(match.group(2))
            assert word not in entries, f"{word} listed twice"
            entries[word] = freq
    return entries


def _lexicon_phrases() -> list[str]:
    data = yaml.safe_load(DEFAULT_LEXICON_PATH.read_text(encoding="utf-8"))
    return [
        normalise(phrase)
        for codes in data.values()
        for spec in codes.values()
        for phrase in [spec["label"], *spec["synonyms"]]
    ]


def test_dictionary_lists_every_lexicon_phrase_and_core_terms() -> None:
    entries = _entries()
    for phrase in _lexicon_phrases():
        assert phrase in entries, phrase
    for term in ("年化利率", "提前还款", "违约金", "宽限期", "停息挂账", "暴力催收", "转人工"):
        assert term in entries, term
    assert all(word == normalise(word) for word in entries), "pipeline text is Simplified"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    import jieba

    instance = jieba.Tokenizer()
    for path in DICTIONARY_DIR.iterdir():
        instance.load_userdict(str(path))
    return instance


@pytest.mark.parametrize(
    ("sentence", "word"),
    [
        ("我想问下等额本息怎么算", "等额本息"),
        ("先息后本可以吗", "先息后本"),
        ("提前还款有违约金吗", "违约金"),
        ("能不能停息挂账", "停息挂账"),
        ("我要转人工", "转人工"),
        ("公积金贷款利率多少", "公积金贷款"),
    ],
)
def test_terms_stay_one_token(tokenizer: Any, sentence: str, word: str) -> None:
    assert word in tokenizer.lcut(sentence)


def test_every_lexicon_phrase_is_one_token(tokenizer: Any) -> None:
    for phrase in _lexicon_phrases():
        assert tokenizer.lcut(f"我想要{phrase}的") == ["我", "想要", phrase, "的"], phrase
