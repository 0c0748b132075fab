"""bot/opencc_fast.py converts exactly as the pinned OpenCC package does: the project's own
texts both ways, every dictionary key, and random texts built to overlap keys."""

from __future__ import annotations

import ast
import itertools
import random
import re
from pathlib import Path
from typing import Any

import opencc
import pytest

from bench.utterances import conversations
from bot.nlu_data import read_examples
from bot.opencc_fast import FastOpenCC

ROOT = Path(__file__).resolve().parents[3]
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module", params=["t2s", "s2t"])
def pair(request: pytest.FixtureRequest) -> tuple[Any, FastOpenCC]:
    package = opencc.OpenCC(request.param)
    return package, FastOpenCC(package)


def keys(package: Any) -> list[str]:
    return sorted({key for group in package._dict_chain_data for (_, _, mapping) in group
                   for key in mapping})


def project_texts() -> list[str]:
    """Borrowers' messages (the benchmark's, the NLU data's) and every Chinese literal of
    the bot's and the gateway's replies."""
    texts = [t for c in itertools.islice(conversations(3), 400) for t in c.turns]
    texts += [e.text for e in read_examples([ROOT / "data" / "nlu"])]
    for path in sorted((ROOT / "actions").rglob("*.py")) + sorted((ROOT / "handoff").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and HAN.search(node.value):
                texts.append(node.value)
    return texts


def test_the_projects_texts_convert_alike(pair: tuple[Any, FastOpenCC]) -> None:
    package, fast = pair
    assert fast.faithful
    texts = project_texts()
    assert len(texts) > 2000
    other = opencc.OpenCC("s2t" if package.conversion == "t2s" else "t2s")
    for text in texts + [other.convert(t) for t in texts[:600]] + ["\n".join(texts[:80])]:
        assert fast.convert(text) == package.convert(text), text


def test_every_key_converts_alike(pair: tuple[Any, FastOpenCC]) -> None:
    package, fast = pair
    for key in keys(package):
        assert fast.convert(key) == package.convert(key), key


def test_random_texts_of_keys_and_their_characters_convert_alike(
        pair: tuple[Any, FastOpenCC]) -> None:
    package, fast = pair
    every = keys(package)
    phrases = [k for k in every if len(k) > 1]
    characters = sorted({ch for k in every for ch in k})
    rng = random.Random(16)
    for _ in range(1500):
        # overlapping phrases: one's tail is the next one's head, or the longest competes
        text = "".join(rng.choice(phrases)[rng.randint(0, 1):] for _ in range(rng.randint(1, 9)))
        assert fast.convert(text) == package.convert(text), text
        mixed = "".join(rng.choice(characters) if rng.random() < 0.85
                        else rng.choice(" ，。、a1-？\n") for _ in range(rng.randint(1, 80)))
        assert fast.convert(mixed) == package.convert(mixed), mixed
    assert fast.convert("") == package.convert("") == ""


class Package:
    """A package converter with one dictionary of its own making."""

    def __init__(self, mapping: dict[str, str]) -> None:
        lengths = [len(k) for k in mapping]
        self.split_chars_re = re.compile(r"(，)")
        self._dict_chain_data = [[(max(lengths), min(lengths), mapping)]]
        self.converted: list[str] = []

    def convert(self, text: str) -> str:
        self.converted.append(text)
        return "package's"


def test_a_key_with_an_empty_value_leaves_the_conversion_to_the_package() -> None:
    package = Package({"干": "", "乾隆": "乾隆"})
    fast = FastOpenCC(package)
    assert not fast.faithful
    assert fast.convert("干，乾隆") == "package's"
    assert package.converted == ["干，乾隆"]


def test_several_candidates_give_the_first_and_separators_stay() -> None:
    package = Package({"发": "發 髮", "头发": "頭髮", "a": "b"})
    fast = FastOpenCC(package)
    assert fast.convert("头发，发a") == "頭髮，發b"
