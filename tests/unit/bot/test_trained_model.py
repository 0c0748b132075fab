"""Train a tiny NLU model with the custom components and parse like `/model/parse` does.

No DIET (seconds, not minutes): this checks the Rasa wiring end to end, i.e. training runs the
normaliser over annotated data, the model packs the lexicon, and the keys reach parse output.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.components.entity_rules import ROOT

CONFIG = f"""
recipe: default.v1
language: zh
assistant_id: components_test
pipeline:
  - name: bot.components.text_normaliser.ChineseTextNormaliser
  - name: JiebaTokenizer
    dictionary_path: {ROOT / "data/dictionaries/jieba"}
  - name: bot.components.loan_entity_extractor.LoanEntityExtractor
    lexicon_path: {ROOT / "data/dictionaries/lexicon.yml"}
"""

NLU = """
version: "3.1"
nlu:
- intent: ask_repayment
  examples: |
    - 借[五萬](amount)分[三年](term)每月還多少
    - [等额本息](repayment_method)怎么算
"""


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu

    work = tmp_path_factory.mktemp("tiny-model")
    (work / "config.yml").write_text(CONFIG, encoding="utf-8")
    (work / "nlu.yml").write_text(NLU, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RASA_CACHE_DIRECTORY", str(work / "cache"))
        model = train_nlu(
            str(work / "config.yml"), str(work / "nlu.yml"), str(work / "models"), "tiny"
        )
    assert model is not None and Path(model).is_file()
    return Agent.load(model)


def _parse(agent: Any, text: str) -> dict[str, Any]:
    return asyncio.run(agent.parse_message(text))


def test_parse_output_has_script_original_text_and_entities(agent: Any) -> None:
    parsed = _parse(agent, "借五萬分三年，等額本息😀")
    assert parsed["text"] == "借五万分三年,等额本息 "
    assert parsed["original_text"] == "借五萬分三年，等額本息😀"
    assert parsed["text_script"] == "traditional"
    assert [(e["entity"], e["value"], e["start"], e["end"]) for e in parsed["entities"]] == [
        ("amount", 50000, 1, 3),
        ("term", 36, 4, 6),
        ("repayment_method", "equal_installment", 7, 11),
    ]
    assert {e["extractor"] for e in parsed["entities"]} == {"LoanEntityExtractor"}


@pytest.mark.parametrize("text", ["", "\x00\x01\x02", "😀" * 50, "借" * 10_000])
def test_parse_odd_messages(agent: Any, text: str) -> None:
    parsed = _parse(agent, text)
    assert parsed["text_script"] == "simplified"
    assert parsed["entities"] == []
