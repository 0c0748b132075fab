"""Rasa component that normalises borrower text before tokenisation (see bot/text.py)."""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.text import detect_script, normalise, warm_up

TEXT_SCRIPT = "text_script"
ORIGINAL_TEXT = "original_text"


# Registered as a featurizer although it adds no features: the default recipe only runs
# tokenizers and featurizers over the training data (`process_training_data`), and it chains
# pipeline nodes in config order, so listing it first makes both training and inference see
# normalised text before JiebaTokenizer. It does not subclass rasa's Featurizer, so Rasa's
# featurizer-compatibility checks ignore it.
@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class ChineseTextNormaliser(GraphComponent):
    """Replaces message text with `normalise(text)` and records the borrower's script.

    Adds `text_script` ("traditional" | "simplified") and `original_text` to each parsed
    message; both appear in /model/parse output and in `tracker.latest_message`, so actions
    can answer in the borrower's script (`bot.text.to_script`).
    """

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ChineseTextNormaliser:
        return cls()

    def __init__(self) -> None:
        warm_up()

    @staticmethod
    def _normalise(message: Message, add_to_output: bool) -> None:
        text = message.get(TEXT)
        if not isinstance(text, str):
            return
        normalised = normalise(text)
        message.set(ORIGINAL_TEXT, text, add_to_output=add_to_output)
        message.set(TEXT_SCRIPT, detect_script(text), add_to_output=add_to_output)
        message.set(TEXT, normalised)
        entities = message.get(ENTITIES)
        if entities:
            message.set(ENTITIES, [_normalise_value(e, text, normalised) for e in entities])

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalise training text in place; offsets of annotated entities stay valid."""
        for example in training_data.training_examples:
            self._normalise(example, add_to_output=False)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._normalise(message, add_to_output=True)
        return messages


def _normalise_value(entity: dict[str, Any], raw: str, normalised: str) -> dict[str, Any]:
    """Keep an annotation's implicit value equal to its (now normalised) span text.

    `[信用貸](product)` has value "信用貸"; left alone, EntitySynonymMapper would learn the
    bogus synonym 信用贷 -> 信用貸 from the normalised text. Explicit values are kept.
    """
    start, end, value = entity.get("start"), entity.get("end"), entity.get("value")
    if isinstance(start, int) and isinstance(end, int) and value == raw[start:end]:
        return {**entity, "value": normalised[start:end]}
    return entity
