"""`loanbot new-intent` writes a consistent intent, and `check_data` catches trainer mistakes;
run on a temporary copy of the project's data so the real files stay untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.trainer.scaffold import Layout, ScaffoldError, check_data, new_intent

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = [f"怎么注销账户{i}" for i in range(3)] + [
    "我想注销账号", "如何注销我的账户", "账户怎么销户", "不想用了怎么注销", "注销账户流程",
    "帮我把账号注销", "怎么删除我的账户", "能注销吗",
]


@pytest.fixture
def project(tmp_path: Path) -> Layout:
    for folder in ("bot/domain", "data", "config", "tests/nlu", "tests/stories"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return Layout(tmp_path)


def test_the_real_data_passes() -> None:
    report = check_data()
    assert report.ok, report.errors


def test_new_intent_writes_every_file_and_stays_clean(project: Layout) -> None:
    written = new_intent("close_account", EXAMPLES, "您可以在APP“我的-设置-注销账户”中申请注销。",
                         layout=project)
    names = {p.relative_to(project.root).as_posix() for p in written}
    assert names == {"data/nlu/close_account.yml", "data/rules/trainer_close_account.yml",
                     "tests/stories/test_close_account.yml", "bot/domain/nlu.yml",
                     "bot/domain/texts.yml"}
    domain = yaml.safe_load(project.domain_nlu.read_text(encoding="utf-8"))
    assert "close_account" in domain["intents"]
    assert "entities" in domain  # the rest of the file survived
    texts = yaml.safe_load(project.texts.read_text(encoding="utf-8"))["texts"]
    assert texts["close_account"][0]["text"].startswith("您可以在APP")
    rule = yaml.safe_load((project.rules_dir / "trainer_close_account.yml").read_text("utf-8"))
    assert rule["rules"][0]["steps"] == [{"intent": "close_account"},
                                         {"action": "action_chitchat"}]
    report = check_data(project)
    assert report.ok, report.errors

    with pytest.raises(ScaffoldError, match="already exists"):
        new_intent("close_account", EXAMPLES, "x", layout=project)


def test_sensitive_intent_goes_to_the_policy(project: Layout) -> None:
    new_intent("legal_threat", [f"我要起诉你们{i}" for i in range(10)], None, sensitive=True,
               layout=project)
    policy = yaml.safe_load(project.policy.read_text(encoding="utf-8"))
    assert policy["sensitive_intents"][-1] == "legal_threat"
    assert policy["unresolved_turn_limit"] == 3  # the rest of the file survived
    rule = (project.rules_dir / "trainer_legal_threat.yml").read_text(encoding="utf-8")
    assert "action: action_handoff" in rule


@pytest.mark.parametrize(("name", "examples", "response", "message"), [
    ("Bad-Name", EXAMPLES, "x", "intent name"),
    ("ask_rate", EXAMPLES, "x", "already exists"),
    ("close_account", EXAMPLES[:4], "x", "at least 10"),
    ("close_account", EXAMPLES, None, "needs --response"),
])
def test_bad_requests_write_nothing(project: Layout, name: str, examples: list[str],
                                    response: str | None, message: str) -> None:
    before = project.domain_nlu.read_text(encoding="utf-8")
    with pytest.raises(ScaffoldError, match=message):
        new_intent(name, examples, response, layout=project)
    assert project.domain_nlu.read_text(encoding="utf-8") == before
    assert not (project.nlu_dir / f"{name}.yml").exists()


def test_check_data_catches_duplicates_and_too_few(project: Layout) -> None:
    (project.nlu_dir / "mistake.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: ask_limit\n  examples: |\n'
        "    - 你好\n"  # also a greet example
        "- intent: new_thing\n  examples: |\n    - 只有一个例子\n",
        encoding="utf-8")
    report = check_data(project)
    text = "\n".join(report.errors)
    assert "duplicate example '你好' under" in text
    assert "new_thing has 1 examples" in text
    assert "new_thing has examples but is not in" in text
