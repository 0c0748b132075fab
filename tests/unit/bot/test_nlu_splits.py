"""Split hygiene: held-out examples must not occur in the training data (bot.nlu_data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.nlu_data import Example, comparison_key, duplicates, read_examples

ROOT = Path(__file__).resolve().parents[3]
TRAINING = read_examples([ROOT / "data" / "nlu"])
DEV = read_examples([ROOT / "tests" / "nlu"])
BLIND = read_examples([ROOT / "tests" / "nlu_blind"])
BLIND2 = read_examples([ROOT / "tests" / "nlu_blind2"])
BLIND3 = read_examples([ROOT / "tests" / "nlu_blind3"])


def test_held_out_splits_do_not_occur_in_training_data() -> None:
    for split in (DEV, BLIND, BLIND2, BLIND3):
        found = duplicates(split, TRAINING)
        assert not found, [(e.intent, e.text, e.source.name) for e in found]


def test_blind_split_does_not_repeat_the_development_split() -> None:
    assert not duplicates(BLIND, DEV)


def test_second_blind_split_repeats_neither_dev_nor_blind_nor_itself() -> None:
    assert not duplicates(BLIND2, DEV)
    assert not duplicates(BLIND2, BLIND)
    keys = [comparison_key(e.text) for e in BLIND2]
    assert len(keys) == len(set(keys))


def test_third_blind_split_repeats_no_other_split_nor_itself() -> None:
    for other in (DEV, BLIND, BLIND2):
        assert not duplicates(BLIND3, other)
    keys = [comparison_key(e.text) for e in BLIND3]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(("split", "minimum"), [(BLIND, 10), (BLIND2, 12), (BLIND3, 1)])
def test_blind_splits_cover_every_intent(split: list[Example], minimum: int) -> None:
    domain = yaml.safe_load((ROOT / "bot" / "domain" / "nlu.yml").read_text(encoding="utf-8"))
    intents = {i if isinstance(i, str) else next(iter(i)) for i in domain["intents"]}
    counts = {name: sum(e.intent == name for e in split) for name in intents}
    assert all(count >= minimum for count in counts.values()), counts


def test_comparison_key_ignores_script_width_case_punctuation_and_emoji() -> None:
    assert comparison_key("審核過了沒？👍") == comparison_key("审核过了没")
    assert comparison_key("ＯＫ 好的!") == comparison_key("ok好的")
    assert comparison_key("借5万") != comparison_key("借6万")
