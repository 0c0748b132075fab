"""The Rasa components, alone, chained like config.yml, and as the default recipe wires them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.components.entity_rules import DEFAULT_LEXICON_PATH, ROOT
from bot.components.loan_entity_extractor import LEXICON_FILE, LoanEntityExtractor
from bot.components.text_normaliser import ORIGINAL_TEXT, TEXT_SCRIPT, ChineseTextNormaliser


@pytest.fixture()
def storage(tmp_path: Path) -> LocalModelStorage:
    (tmp_path / "model").mkdir()
    return LocalModelStorage(tmp_path / "model")


@pytest.fixture()
def context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test-model")


def _normaliser(storage: LocalModelStorage, context: ExecutionContext) -> ChineseTextNormaliser:
    return ChineseTextNormaliser.create({}, storage, Resource("normaliser"), context)


def _extractor(
    storage: LocalModelStorage, context: ExecutionContext, **config: Any
) -> LoanEntityExtractor:
    return LoanEntityExtractor.create(config, storage, Resource("extractor"), context)


def test_normaliser_rewrites_text_and_exposes_script(
    storage: LocalModelStorage, context: ExecutionContext
) -> None:
    message = Message(data={TEXT: "請問借５萬分三年😀"})
    _normaliser(storage, context).process([message])
    parsed = message.as_dict(only_output_properties=True)
    assert parsed[TEXT] == "请问借5万分三年 "
    assert parsed[TEXT_SCRIPT] == "traditional"
    assert parsed[ORIGINAL_TEXT] == "請問借５萬分三年😀"


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01", "😀" * 10, "借" * 10_000])
def test_normaliser_odd_messages(
    storage: LocalModelStorage, context: ExecutionContext, text: str
) -> None:
    message = Message(data={TEXT: text})
    _normaliser(storage, context).process([message])
    assert len(message.get(TEXT)) == len(text)
    assert message.get(TEXT_SCRIPT) == "simplified"


def test_normaliser_leaves_messages_without_text_alone(
    storage: LocalModelStorage, context: ExecutionContext
) -> None:
    message = Message(data={"intent": "greet"})
    _normaliser(storage, context).process([message])
    assert TEXT not in message.data and TEXT_SCRIPT not in message.data


def test_normaliser_keeps_training_annotations_valid(
    storage: LocalModelStorage, context: ExecutionContext
) -> None:
    example = Message(
        data={
            TEXT: "借五萬用兩年，要等額本息",
            "intent": "ask_repayment",
            ENTITIES: [
                {"entity": "amount", "start": 1, "end": 3, "value": "五萬"},
                {"entity": "term", "start": 4, "end": 6, "value": "兩年"},
                {"entity": "repayment_method", "start": 8, "end": 12, "value": "等額本息"},
            ],
        }
    )
    data = _normaliser(storage, context).process_training_data(TrainingData([example]))
    (processed,) = data.training_examples
    text = processed.get(TEXT)
    assert text == "借五万用两年,要等额本息"
    assert [text[e["start"] : e["end"]] for e in processed.get(ENTITIES)] == [
        "五万",
        "两年",
        "等额本息",
    ]
    # Implicit values follow the text, so EntitySynonymMapper learns no 两年 -> 兩年 synonym.
    assert [e["value"] for e in processed.get(ENTITIES)] == ["五万", "两年", "等额本息"]


def test_normaliser_keeps_explicit_synonym_values(
    storage: LocalModelStorage, context: ExecutionContext
) -> None:
    entity = {"entity": "product", "start": 2, "end": 5, "value": "credit"}
    example = Message(data={TEXT: "我要信用貸", ENTITIES: [entity]})
    _normaliser(storage, context).process_training_data(TrainingData([example]))
    assert example.get(ENTITIES) == [entity]


def test_pipeline_normaliser_jieba_extractor(
    storage: LocalModelStorage, context: ExecutionContext
) -> None:
    normaliser = _normaliser(storage, context)
    tokenizer = JiebaTokenizer.create(
        {
            **JiebaTokenizer.get_default_config(),
            "dictionary_path": str(ROOT / "data/dictionaries/jieba"),
        },
        storage,
        Resource("jieba"),
        context,
    )
    extractor = _extractor(storage, context)
    message = Message(data={TEXT: "借五萬分十二期，等額本息每月還多少😀"})
    for component in (normaliser, tokenizer, extractor):
        component.process([message])

    tokens = [t.text for t in message.get("text_tokens")]
    assert "等额本息" in tokens  # the user dictionary keeps the loan term whole
    parsed = message.as_dict(only_output_properties=True)
    assert parsed[TEXT_SCRIPT] == "traditional"
    found = [
        (e["entity"], parsed[TEXT][e["start"] : e["end"]], e["value"]) for e in parsed[ENTITIES]
    ]
    assert found == [
        ("amount", "五万", 50000),
        ("term", "十二期", 12),
        ("repayment_method", "等额本息", "equal_installment"),
    ]
    assert {e["extractor"] for e in parsed[ENTITIES]} == {"LoanEntityExtractor"}
    assert all(e["confidence"] == 1.0 for e in parsed[ENTITIES])


def test_extractor_keeps_entities_of_other_extractors(
    storage: LocalModelStorage, context: ExecutionContext
) -> None:
    earlier = {"entity": "amount", "value": 1, "start": 0, "end": 1, "extractor": "Other"}
    message = Message(data={TEXT: "借5万", ENTITIES: [earlier]})
    _extractor(storage, context).process([message])
    assert message.get(ENTITIES)[0] == earlier
    assert message.get(ENTITIES)[1]["value"] == 50000


@pytest.mark.parametrize("text", [None, "", "\x00" * 20, "借" * 10_000])
def test_extractor_odd_messages(
    storage: LocalModelStorage, context: ExecutionContext, text: str | None
) -> None:
    message = Message(data={TEXT: text} if text is not None else {})
    _extractor(storage, context).process([message])
    assert message.get(ENTITIES, []) == []


def test_trained_extractor_does_not_need_the_lexicon_file(
    tmp_path: Path, storage: LocalModelStorage, context: ExecutionContext
) -> None:
    lexicon_file = tmp_path / "lexicon.yml"
    lexicon_file.write_text(
        yaml.safe_dump({"product": {"car": {"label": "车贷", "synonyms": ["汽车贷"]}}}),
        encoding="utf-8",
    )
    resource = Resource("extractor")
    config = {"lexicon_path": str(lexicon_file)}
    trained = LoanEntityExtractor.create(config, storage, resource, context)
    assert trained.train(TrainingData()) == resource
    lexicon_file.unlink()

    loaded = LoanEntityExtractor.load(config, storage, resource, context)
    message = Message(data={TEXT: "我想办汽车贷"})
    loaded.process([message])
    assert [(e["entity"], e["value"]) for e in message.get(ENTITIES)] == [("product", "car")]
    with storage.read_from(resource) as directory:
        assert (Path(directory) / LEXICON_FILE).is_file()


def test_load_without_stored_lexicon_reads_the_file(
    storage: LocalModelStorage, context: ExecutionContext
) -> None:
    loaded = LoanEntityExtractor.load({}, storage, Resource("never-trained"), context)
    assert loaded.rules.extract("等额本金")[0]["value"] == "equal_principal"


def test_missing_lexicon_fails_clearly(
    tmp_path: Path, storage: LocalModelStorage, context: ExecutionContext
) -> None:
    with pytest.raises(FileNotFoundError, match="lexicon not found"):
        _extractor(storage, context, lexicon_path=str(tmp_path / "missing.yml"))


def test_fingerprint_follows_lexicon_content(tmp_path: Path) -> None:
    lexicon_file = tmp_path / "lexicon.yml"
    lexicon_file.write_text("product: {credit: [信用贷]}\n", encoding="utf-8")
    config = {"lexicon_path": str(lexicon_file)}
    before = LoanEntityExtractor.fingerprint_addon(config)
    lexicon_file.write_text("product: {credit: [信用贷, 信用贷款]}\n", encoding="utf-8")
    assert before is not None and LoanEntityExtractor.fingerprint_addon(config) != before
    assert LoanEntityExtractor.fingerprint_addon({}) is not None  # default path resolves
    assert DEFAULT_LEXICON_PATH.is_file()


def test_default_recipe_runs_the_normaliser_before_the_tokenizer() -> None:
    """Training and inference graphs built from config.yml, as `rasa train` builds them."""
    from rasa.engine.recipes.default_recipe import DefaultV1Recipe
    from rasa.shared.data import TrainingType

    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    graphs = DefaultV1Recipe().graph_config_for_recipe(config, {}, TrainingType.NLU)
    train = graphs.train_schema.nodes
    predict = graphs.predict_schema.nodes

    def node(nodes: dict[str, Any], cls: type) -> tuple[str, Any]:
        matches = [(name, n) for name, n in nodes.items() if n.uses is cls]
        assert len(matches) == 1, matches
        return matches[0]

    norm_name, norm_train = node(train, ChineseTextNormaliser)
    assert norm_train.fn == "process_training_data"
    jieba_run = next(
        n for n in train.values() if n.uses is JiebaTokenizer and n.fn == "process_training_data"
    )
    assert jieba_run.needs["training_data"] == norm_name

    norm_predict_name, norm_predict = node(predict, ChineseTextNormaliser)
    assert norm_predict.fn == "process"
    jieba_predict = next(n for n in predict.values() if n.uses is JiebaTokenizer)
    assert jieba_predict.needs["messages"] == norm_predict_name

    _, extractor_train = node(train, LoanEntityExtractor)
    assert extractor_train.fn == "train"
    _, extractor_predict = node(predict, LoanEntityExtractor)
    assert extractor_predict.constructor_name == "load"
    assert extractor_predict.resource is not None
