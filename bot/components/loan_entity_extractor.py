"""Rasa component: rule-based loan entities (amount, term, method, product, ids).

A thin wrapper around `bot.components.entity_rules`; the rules are pure Python so they can be
tested without Rasa and reused by the action server. The lexicon is read at training time and
stored in the model, so a trained model does not depend on the working directory, and
`fingerprint_addon` makes Rasa retrain this node whenever lexicon.yml changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.components.entity_rules import ROOT, EntityRules, Lexicon

logger = logging.getLogger(__name__)

LEXICON_FILE = "lexicon.json"


def resolve_lexicon_path(path: str | Path) -> Path:
    """Relative paths resolve against the working directory, then the repository root."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return ROOT / candidate


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True)
class LoanEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Extracts entities with `EntityRules` built once from the lexicon."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"lexicon_path": "data/dictionaries/lexicon.yml"}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        lexicon: Lexicon,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.rules = EntityRules(lexicon)

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """Hash the lexicon file: Rasa's cache cannot see files outside the training data."""
        path = resolve_lexicon_path(
            config.get("lexicon_path") or cls.get_default_config()["lexicon_path"]
        )
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return None

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LoanEntityExtractor:
        """Read the lexicon from `lexicon_path`; fails loudly at training time if missing."""
        merged = {**cls.get_default_config(), **config}
        path = resolve_lexicon_path(merged["lexicon_path"])
        if not path.is_file():
            raise FileNotFoundError(f"LoanEntityExtractor: lexicon not found at {path}")
        return cls(merged, model_storage, resource, Lexicon.from_file(path))

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LoanEntityExtractor:
        """Use the lexicon stored in the model; fall back to the file if there is none."""
        try:
            with model_storage.read_from(resource) as directory:
                data = json.loads((Path(directory) / LEXICON_FILE).read_text(encoding="utf-8"))
        except (ValueError, OSError) as error:
            logger.warning(
                "LoanEntityExtractor: no stored lexicon in %s (%s); reading lexicon_path.",
                resource.name,
                error,
            )
            return cls.create(config, model_storage, resource, execution_context)
        return cls(config, model_storage, resource, Lexicon.from_mapping(data))

    def train(self, training_data: TrainingData) -> Resource:
        """Nothing is learnt; persist the lexicon so the model is self-contained."""
        with self._model_storage.write_to(self._resource) as directory:
            (Path(directory) / LEXICON_FILE).write_text(
                json.dumps(self.rules.lexicon.to_mapping(), ensure_ascii=False, indent=1),
                encoding="utf-8",
            )
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str):
                continue
            extracted = self.add_extractor_name(self.rules.extract(text))
            message.set(ENTITIES, message.get(ENTITIES, []) + extracted, add_to_output=True)
        return messages
