"""Rasa component: the sensitive-intent safety net after DIETClassifier.

When a cue from data/dictionaries/sensitive_cues.yml occurs in the (normalised) message and
the classifier is not near-certain of something else, the cue's intent becomes the prediction
and is ranked first; `sensitive_cue` in the parse data says which intent the cue fired for,
so trainers can see every override. The cues are stored in the model at training time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.sensitive_cues import ROOT, SensitiveCues, should_override

CUES_FILE = "sensitive_cues.json"
CUE_KEY = "sensitive_cue"
CUE_CONFIDENCE = 0.95


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class SensitiveIntentGuard(GraphComponent):
    """Overrides the predicted intent when an unambiguous sensitive cue is present."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"cues_path": "data/dictionaries/sensitive_cues.yml"}

    def __init__(self, model_storage: ModelStorage, resource: Resource,
                 cues: SensitiveCues) -> None:
        self._model_storage = model_storage
        self._resource = resource
        self.cues = cues

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """Hash the cue file: Rasa's training cache cannot see files outside the data."""
        path = _cues_path(config)
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return None

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> SensitiveIntentGuard:
        return cls(model_storage, resource, SensitiveCues.from_file(_cues_path(config)))

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> SensitiveIntentGuard:
        with model_storage.read_from(resource) as directory:
            data = json.loads((Path(directory) / CUES_FILE).read_text(encoding="utf-8"))
        return cls(model_storage, resource, SensitiveCues.from_mapping(data))

    def train(self, training_data: TrainingData) -> Resource:
        with self._model_storage.write_to(self._resource) as directory:
            (Path(directory) / CUES_FILE).write_text(
                json.dumps(self.cues.to_mapping(), ensure_ascii=False), encoding="utf-8")
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            apply_guard(message, self.cues)
        return messages


def _cues_path(config: dict[str, Any]) -> Path:
    path = Path({**SensitiveIntentGuard.get_default_config(), **config}["cues_path"])
    return path if path.is_absolute() else ROOT / path


def apply_guard(message: Message, cues: SensitiveCues) -> None:
    cue = cues.find(message.get(TEXT) or "")
    if cue is None:
        return
    cue_intent = cue.intent
    predicted = message.get(INTENT) or {}
    name = predicted.get("name")
    confidence = float(predicted.get("confidence") or 0.0)
    if not should_override(cue_intent, name, confidence, frozenset(cues.intents), cue.always):
        return
    ranking: list[dict[str, Any]] = list(message.get(INTENT_RANKING_KEY) or [])
    previous = next((r for r in ranking if r.get("name") == cue_intent), None)
    new_confidence = max(CUE_CONFIDENCE, float(previous["confidence"]) if previous else 0.0)
    top = {"name": cue_intent, "confidence": new_confidence}
    ranking = [top] + [r for r in ranking if r.get("name") != cue_intent]
    message.set(INTENT, top, add_to_output=True)
    message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
    message.set(CUE_KEY, cue_intent, add_to_output=True)
