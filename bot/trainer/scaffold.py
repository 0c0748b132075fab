"""Scaffold a new intent end to end, and the data checks that catch trainer mistakes.

`new_intent` writes every file a new intent needs (docs/trainers.md walks through them):
examples (data/nlu/<name>.yml), the reply template (bot/domain/texts.yml, answered by
action_chitchat in the borrower's script) or, for a sensitive intent, an entry in
config/handoff.yml (answered by action_handoff), the rule (data/rules/trainer_<name>.yml),
a test story (tests/stories/test_<name>.yml) and the intent in bot/domain/nlu.yml.
Existing files are appended to as text so their comments survive.

`check_data` finds what `rasa data validate` does not: the same example under two intents,
intents with too few examples, intents without examples, rules or domain entries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.text import normalise

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"^[a-z][a-z0-9_]{2,63}$")
MIN_EXAMPLES = 10
# Built-in names that never need examples of their own.
BUILT_IN_INTENTS = frozenset({"nlu_fallback"})
_ENTITY_MARKUP = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


class ScaffoldError(ValueError):
    """The new intent cannot be scaffolded as asked (bad name, already exists, too few)."""


@dataclass
class Layout:
    """Where the files live (a temporary copy of the project in tests)."""

    root: Path = ROOT

    @property
    def domain_nlu(self) -> Path:
        return self.root / "bot" / "domain" / "nlu.yml"

    @property
    def texts(self) -> Path:
        return self.root / "bot" / "domain" / "texts.yml"

    @property
    def policy(self) -> Path:
        return self.root / "config" / "handoff.yml"

    @property
    def nlu_dir(self) -> Path:
        return self.root / "data" / "nlu"

    @property
    def rules_dir(self) -> Path:
        return self.root / "data" / "rules"

    @property
    def stories_dir(self) -> Path:
        return self.root / "data" / "stories"

    @property
    def test_stories_dir(self) -> Path:
        return self.root / "tests" / "stories"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def domain_intents(layout: Layout) -> list[str]:
    data = yaml.safe_load(layout.domain_nlu.read_text(encoding="utf-8")) or {}
    return [i if isinstance(i, str) else next(iter(i)) for i in data.get("intents") or []]


def new_intent(
    name: str,
    examples: Sequence[str],
    response: str | None,
    *,
    sensitive: bool = False,
    layout: Layout | None = None,
) -> list[Path]:
    """Write the files for intent `name`; returns the paths written or changed."""
    layout = layout or Layout()
    if not NAME.match(name):
        raise ScaffoldError(f"intent name {name!r}: lower-case letters, digits and _ (3-64)")
    if name in domain_intents(layout):
        raise ScaffoldError(f"intent {name} already exists in {layout.domain_nlu}")
    cleaned = list(dict.fromkeys(e.strip() for e in examples if e.strip()))
    if len(cleaned) < MIN_EXAMPLES:
        raise ScaffoldError(f"{len(cleaned)} distinct examples; give at least {MIN_EXAMPLES}")
    if not sensitive and not (response and response.strip()):
        raise ScaffoldError("a non-sensitive intent needs --response (the bot's answer)")
    targets = {
        "nlu": layout.nlu_dir / f"{name}.yml",
        "rule": layout.rules_dir / f"trainer_{name}.yml",
        "story": layout.test_stories_dir / f"test_{name}.yml",
    }
    for path in targets.values():
        if path.exists():
            raise ScaffoldError(f"{path} already exists")

    written: list[Path] = []
    examples_block = "\n".join(f"    - {e}" for e in cleaned)
    targets["nlu"].write_text(
        f"# Intent {name}, scaffolded by `loanbot new-intent` (docs/trainers.md).\n"
        f"# Annotation rules: docs/contracts.md. Add held-out examples to tests/nlu/.\n"
        f'version: "3.1"\n\nnlu:\n- intent: {name}\n  examples: |\n{examples_block}\n',
        encoding="utf-8",
    )
    written.append(targets["nlu"])

    action = "action_handoff" if sensitive else "action_chitchat"
    targets["rule"].write_text(
        f"# Scaffolded by `loanbot new-intent` (docs/trainers.md).\n"
        f'version: "3.1"\n\nrules:\n  - rule: {name}\n    steps:\n'
        f"      - intent: {name}\n      - action: {action}\n",
        encoding="utf-8",
    )
    written.append(targets["rule"])

    targets["story"].write_text(
        f"# Test story for {name}, scaffolded by `loanbot new-intent`. Use a text that is NOT\n"
        f"# among the training examples, so the story also tests the NLU.\n"
        f'version: "3.1"\n\nstories:\n  - story: {name} is answered\n    steps:\n'
        f"      - user: |\n          {cleaned[-1]}\n        intent: {name}\n"
        f"      - action: {action}\n",
        encoding="utf-8",
    )
    written.append(targets["story"])

    _append_intent_to_domain(layout.domain_nlu, name)
    written.append(layout.domain_nlu)
    if sensitive:
        _append_sensitive(layout.policy, name)
        written.append(layout.policy)
    if response and response.strip():
        with layout.texts.open("a", encoding="utf-8") as handle:
            handle.write(f"  {name}:\n    - text: {_quote(response.strip())}\n")
        written.append(layout.texts)
    return written


def _insert_after_list(path: Path, key: str, item: str) -> None:
    """Add `  - item` at the end of the top-level list `key:` keeping the rest of the file."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == f"{key}:")
    except StopIteration:
        raise ScaffoldError(f"{path}: no top-level '{key}:' list") from None
    last = start
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if lines[i].startswith("  - "):
            last = i
        elif stripped and not stripped.startswith("#") and not lines[i].startswith(" "):
            break
    lines.insert(last + 1, f"  - {item}\n")
    path.write_text("".join(lines), encoding="utf-8")


def _append_intent_to_domain(path: Path, name: str) -> None:
    _insert_after_list(path, "intents", name)


def _append_sensitive(path: Path, name: str) -> None:
    _insert_after_list(path, "sensitive_intents", name)


# --- checks -------------------------------------------------------------------------------

@dataclass
class DataReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _plain(example: str) -> str:
    """An example without entity markup, normalised for comparison."""
    text = _ENTITY_MARKUP.sub(lambda m: m.group(1), example)
    return re.sub(r"\s+", " ", normalise(text)).strip().lower()


def read_examples(files: Sequence[Path]) -> dict[str, list[tuple[str, Path]]]:
    """intent → [(example, file)] from Rasa NLU YAML files (regexes and lookups skipped)."""
    found: dict[str, list[tuple[str, Path]]] = {}
    for path in files:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            if not isinstance(block, dict) or "intent" not in block:
                continue
            text = block.get("examples") or ""
            for line in str(text).splitlines():
                line = line.strip()
                if line.startswith("- "):
                    found.setdefault(block["intent"], []).append((line[2:].strip(), path))
    return found


def _rule_intents(layout: Layout) -> set[str]:
    intents: set[str] = set()
    for folder in (layout.rules_dir, layout.stories_dir):
        for path in sorted(folder.glob("*.yml")):
            text = path.read_text(encoding="utf-8")
            intents.update(re.findall(r"^\s*-\s*intent:\s*([A-Za-z0-9_]+)", text, re.M))
    return intents


def check_data(layout: Layout | None = None, min_examples: int = MIN_EXAMPLES) -> DataReport:
    layout = layout or Layout()
    report = DataReport()
    training = read_examples(sorted(layout.nlu_dir.glob("*.yml")))
    held_out: dict[str, list[tuple[str, Path]]] = {}
    for folder in (layout.root / "tests" / "nlu", layout.root / "tests" / "inbox"):
        if folder.is_dir():
            for intent, found in read_examples(sorted(folder.rglob("*.yml"))).items():
                held_out.setdefault(intent, []).extend(found)
    domain = set(domain_intents(layout))

    seen: dict[str, tuple[str, Path]] = {}
    for intent, examples in sorted(training.items()):
        report.counts[intent] = len(examples)
        for example, path in examples:
            key = _plain(example)
            if key in seen and seen[key][0] != intent:
                other, other_path = seen[key]
                report.errors.append(
                    f"duplicate example {example!r} under {intent} ({path.name}) "
                    f"and {other} ({other_path.name})")
            seen.setdefault(key, (intent, path))
        if len(examples) < min_examples:
            report.errors.append(f"intent {intent} has {len(examples)} examples "
                                 f"(at least {min_examples})")
        if intent not in domain:
            report.errors.append(f"intent {intent} has examples but is not in {layout.domain_nlu}")
    for intent in sorted(domain - set(training) - BUILT_IN_INTENTS):
        report.errors.append(f"intent {intent} is in the domain but has no training examples")
    for _intent, examples in sorted(held_out.items()):
        for example, path in examples:
            owner = seen.get(_plain(example))
            if owner is not None:
                report.errors.append(
                    f"held-out example {example!r} ({path.name}) is also training data "
                    f"under {owner[0]}")
    routed = _rule_intents(layout)
    for intent in sorted(domain - routed - BUILT_IN_INTENTS):
        report.warnings.append(f"intent {intent} appears in no rule or story")
    return report
