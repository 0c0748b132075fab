"""Read NLU YAML examples and compare splits (training vs held-out), without Rasa.

Used by the split-hygiene test and by `bot.evaluation`: a held-out example that also occurs in
the training data (after annotations, script, width, case, punctuation and emoji are removed)
measures memory, not generalisation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

import yaml

from bot.text import normalise

_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


@dataclass(frozen=True)
class Example:
    intent: str
    text: str  # annotations removed
    source: Path


def strip_annotations(line: str) -> str:
    return _ANNOTATION.sub(lambda m: m.group(1), line)


def read_examples(paths: Iterable[Path]) -> list[Example]:
    """Every intent example in the given YAML files or directories (sorted, recursive)."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.rglob("*.yml")) if path.is_dir() else [path])
    examples = []
    for file in files:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            if "intent" not in block:
                continue
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    examples.append(Example(block["intent"], strip_annotations(line[2:]), file))
    return examples


def comparison_key(text: str) -> str:
    """What two examples must share to count as the same: letters and digits only."""
    norm = normalise(text).lower()
    return "".join(ch for ch in norm if unicodedata.category(ch)[0] in "LN")


def duplicates(held_out: list[Example], training: list[Example]) -> list[Example]:
    """Held-out examples whose comparison key equals some training example's."""
    keys = {comparison_key(e.text) for e in training}
    return [e for e in held_out if comparison_key(e.text) in keys]


def near_duplicates(
    held_out: list[Example], training: list[Example], threshold: float = 0.85
) -> list[tuple[Example, Example, float]]:
    """Held-out examples with a training example at least `threshold` similar (difflib ratio
    over comparison keys); a review aid, since short chit-chat overlaps legitimately."""
    train_keys = [(comparison_key(e.text), e) for e in training]
    found = []
    for example in held_out:
        key = comparison_key(example.text)
        if len(key) < 4:
            continue
        best = max(
            ((SequenceMatcher(None, key, k).ratio(), t) for k, t in train_keys if k),
            key=lambda pair: pair[0],
            default=(0.0, None),
        )
        if best[1] is not None and best[0] >= threshold:
            found.append((example, best[1], best[0]))
    return found
